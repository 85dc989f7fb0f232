using System.Collections.Concurrent;
using Holdfast.Bots;
using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.Tests.Sessions;

/// <summary><see cref="SessionChanges"/>: what live views (the dashboard's sessions feed) learn of, and when.</summary>
public sealed class SessionChangesTests
{
    [Fact(Timeout = 60_000)]
    public async Task BotManager_SignalsEveryChangeOfABot_AfterItIsStored()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path);
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<BotManager>();
        var changes = host.Services.GetRequiredService<SessionChanges>();
        var seen = new ConcurrentQueue<SessionChange>();
        using var subscription = changes.Subscribe(seen.Enqueue);
        var steps = new List<Func<Task>>
        {
            () => manager.StartSessionAsync(new StartBotSession("bot1", "bridge", "alice")),
            () => manager.UpdateQrAsync("bot1", "qr-1"),
            () => manager.RecordMessageAsync("bot1", "hello"),
            () => manager.ReportConnectionAsync("bot1", "connected"),
            () => manager.EndSessionAsync("bot1"),
        };

        foreach (var step in steps)
        {
            var before = seen.Count;
            await step();
            seen.Count.ShouldBeGreaterThan(before, "each change is signalled by the time its call returns");
        }

        seen.ShouldAllBe(c => c.Kind == SessionKind.Bot && c.SessionId == "bot1" && !c.OutputOnly);
    }

    [Fact(Timeout = 60_000)]
    public async Task Generations_SignalCreateStatusOutputAndDelete_AndNothingAfterDispose()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "100" });
        await host.StartAsync();
        var sessions = host.Services.GetRequiredService<GenerationSessions>();
        var changes = host.Services.GetRequiredService<SessionChanges>();
        var seen = new ConcurrentQueue<SessionChange>();
        var subscription = changes.Subscribe(seen.Enqueue);
        changes.HasObservers.ShouldBeTrue();

        var (session, _) = await sessions.CreateAsync(new CreateGenerationRequest
        {
            Owner = "alice",
            Model = "scripted",
            Input = [new GenerationMessage("user", "Hello")],
            Parameters = new GenerationParameters { MaxTokens = 20 },
        });
        await Poll.UntilAsync(() => Task.FromResult(seen.Any(c => c.OutputOnly)), "a chunk is signalled as output only");
        await sessions.PauseAsync(session.Id, new Actor("alice"), wait: TimeSpan.FromSeconds(10));
        var beforeDelete = seen.Count;
        await sessions.DeleteAsync(session.Id, new Actor("alice"));

        seen.ShouldAllBe(c => c.Kind == SessionKind.Generation && c.SessionId == session.Id);
        seen.Count(c => !c.OutputOnly).ShouldBeGreaterThanOrEqualTo(3, "created (queued), running, paused");
        seen.Count.ShouldBeGreaterThan(beforeDelete, "the delete is signalled");

        subscription.Dispose();
        changes.HasObservers.ShouldBeFalse();
        var count = seen.Count;
        await sessions.CreateAsync(new CreateGenerationRequest { Owner = "alice", Model = "scripted", Input = [new GenerationMessage("user", "Again")] });
        seen.Count.ShouldBe(count);
    }
}
