using Holdfast.Generation;
using Holdfast.Server.Dashboard;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Dashboard.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>The live sessions feed behind the list: who hears of what, and how often.</summary>
public sealed class DashboardSessionFeedTests
{
    [Fact(Timeout = 60_000)]
    public async Task Feed_SendsRowsOnlyToTheirOwner_AndARemovalOnlyToFeedsThatHadTheRow()
    {
        await using var server = await DashboardServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        var feed = server.Services.GetRequiredService<DashboardSessionFeed>();
        using var alice = feed.Subscribe("alice", kind: null, id: null);
        using var bob = feed.Subscribe("bob", kind: null, id: null);
        using var admin = feed.Subscribe(null, SessionKind.Generation, id: null);

        var generation = await server.StartGenerationAsync(key, "hello", maxTokens: 3);
        await Poll.UntilAsync(async () => (await server.GetGenerationAsync(key, generation.Id)).Status == Client.Models.GenerationStatus.Completed, "completed");
        await server.Services.GetRequiredService<GenerationSessions>().DeleteAsync(generation.Id, new Actor("alice"));

        var aliceBatches = await DrainUntilAsync(alice, b => b.Removed.Any(r => r.Id == generation.Id));
        aliceBatches.SelectMany(b => b.Rows).ShouldContain(r => r.Id == generation.Id);
        var adminBatches = await DrainUntilAsync(admin, b => b.Removed.Any(r => r.Id == generation.Id));
        adminBatches.SelectMany(b => b.Rows).ShouldAllBe(r => r.Kind == "generation");
        bob.Reader.TryRead(out _).ShouldBeFalse("bob was sent neither alice's row nor its removal");
    }

    [Fact(Timeout = 60_000)]
    public async Task Feed_RefreshesAStreamingSessionAtMostTwiceASecond()
    {
        await using var server = await DashboardServer.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "100" });
        var key = await server.CreateKeyAsync("alice");
        var feed = server.Services.GetRequiredService<DashboardSessionFeed>();
        using var alice = feed.Subscribe("alice", SessionKind.Generation, id: null);

        var generation = await server.StartGenerationAsync(key, "a long one", maxTokens: 300);
        var rows = new List<DashboardSession>();
        await Poll.UntilAsync(
            () =>
            {
                while (alice.Reader.TryRead(out var batch))
                {
                    rows.AddRange(batch.Rows.Where(r => r.Id == generation.Id));
                }

                return Task.FromResult(rows.Any(r => r.OutputTokens >= 200));
            },
            "the feed reports 200 tokens",
            TimeSpan.FromSeconds(20));

        // 200 chunks in about 2 s: a row per chunk would be 200; output-only refreshes come every 500 ms.
        var running = rows.Where(r => r.Status == "running").ToList();
        running.Count.ShouldBeGreaterThanOrEqualTo(2, "the token count moves while it runs");
        running.Count.ShouldBeLessThanOrEqualTo(12);
        running.Select(r => r.OutputTokens).ShouldBeInOrder(SortDirection.Ascending);
    }

    private static async Task<List<DashboardFeedBatch>> DrainUntilAsync(
        DashboardSessionFeed.Subscriber subscriber,
        Func<DashboardFeedBatch, bool> done)
    {
        var batches = new List<DashboardFeedBatch>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var batch = await subscriber.Reader.ReadAsync(timeout.Token);
            batches.Add(batch);
            if (done(batch))
            {
                return batches;
            }
        }
    }
}
