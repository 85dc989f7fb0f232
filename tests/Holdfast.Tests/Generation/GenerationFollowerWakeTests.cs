using System.Runtime.ExceptionServices;
using Holdfast.Generation;

namespace Holdfast.Tests.Generation;

/// <summary>How a live follower is woken: by its pending waits completing, never by cancelling the wait that lost.</summary>
public sealed class GenerationFollowerWakeTests
{
    private static readonly AsyncLocal<bool> Following = new();

    [Fact(Timeout = 60_000)]
    public async Task FollowAsync_LiveSessionToTheEnd_WokenWithoutAnyExceptionThrown()
    {
        // Arrange: a session streaming for about half a second, so the follower is woken by live chunks and commits.
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "200", ["Scripted:MaxTokens"] = "100" });
        var request = GenerationTestHost.ScriptedRequest(seed: 11);
        var (session, _) = await host.Sessions.CreateAsync(request);
        var thrown = new List<string>();

        // Only exceptions thrown in the follower's own flow count (the flag flows with its continuations, not into the
        // runner or the group commit); before, every wake-up cancelled the wait that lost, one throw each.
        void OnThrown(object? sender, FirstChanceExceptionEventArgs e)
        {
            if (Following.Value)
            {
                lock (thrown)
                {
                    thrown.Add(e.Exception.GetType().Name);
                }
            }
        }

        AppDomain.CurrentDomain.FirstChanceException += OnThrown;
        List<GenerationLogEvent> events;
        try
        {
            // Act
            events = await FollowFlaggedAsync(host, session.Id);
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= OnThrown;
        }

        // Assert
        var done = await host.Sessions.GetAsync(session.Id, null);
        events.Select(e => e.Seq).ShouldBe(Enumerable.Range(1, events.Count).Select(i => (long)i));
        events[^1].StatusChange!.Status.ShouldBe(GenerationStatus.Completed);
        string.Concat(events.Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(done.Output);
        events.Count(e => e.Type == GenerationLogEventType.Chunk).ShouldBeGreaterThan(50, "followed live, chunk by chunk");
        thrown.ShouldBeEmpty();
    }

    private static async Task<List<GenerationLogEvent>> FollowFlaggedAsync(GenerationTestHost host, string id)
    {
        Following.Value = true;
        var events = new List<GenerationLogEvent>();
        await foreach (var e in host.Sessions.FollowAsync(id, "alice"))
        {
            events.Add(e);
        }

        return events;
    }
}
