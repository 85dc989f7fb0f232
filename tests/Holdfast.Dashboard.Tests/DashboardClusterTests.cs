using Holdfast.TestHelpers;
using Microsoft.Playwright;

namespace Holdfast.Dashboard.Tests;

/// <summary>The sessions list over several nodes (two servers on one PostgreSQL database): which node holds each session.</summary>
[Collection(BrowserCollection.Name)]
public sealed class DashboardClusterTests(BrowserFixture browser)
{
    [Fact(Timeout = 180_000)]
    public async Task List_WithSeveralNodes_ShowsTheNodeThatHoldsEachRunningSession()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync("holdfast_dash");
        await using var a = await DashboardServer.StartAsync(Node(db, "node-a"));
        var key = await a.CreateKeyAsync("alice");
        var onA = await a.StartGenerationAsync(key, "held by the first node");
        await Poll.UntilAsync(() => a.GetGenerationAsync(key, onA.Id), g => g.Holder?.NodeId == "node-a", "node-a holds the first session", TimeSpan.FromSeconds(30));
        await using var profile = await browser.NewProfileAsync();
        await Pages.KeepScreenshotsOnFailureAsync(profile, "cluster-list", async () =>
        {
            var page = await profile.NewPageAsync();
            await Pages.SignInAsync(page, a, key);
            var nodeHeader = page.GetByRole(AriaRole.Columnheader, new() { Name = "Node", Exact = true });
            await Assertions.Expect(page.Locator($"tr[data-id='{onA.Id}'] .chip")).ToHaveTextAsync("running");
            await Assertions.Expect(nodeHeader).ToHaveCountAsync(0);

            // A second node joins and holds a session of its own (a new session goes to whichever node claims it first).
            await using var b = await DashboardServer.StartAsync(Node(db, "node-b"));
            string? onB = null;
            for (var i = 0; i < 8 && onB is null; i++)
            {
                var started = await b.StartGenerationAsync(key, $"for the second node {i}");
                var held = await Poll.UntilAsync(() => b.GetGenerationAsync(key, started.Id), g => g.Holder is not null, "the new session is held", TimeSpan.FromSeconds(30));
                onB = held.Holder!.NodeId == "node-b" ? started.Id : null;
            }

            onB.ShouldNotBeNull("node-b claimed one of eight new sessions");
            await page.ReloadAsync();
            await Assertions.Expect(nodeHeader).ToBeVisibleAsync();
            await Assertions.Expect(page.Locator($"tr[data-id='{onA.Id}'] td[data-label='Node']")).ToHaveTextAsync("node-a");
            await Assertions.Expect(page.Locator($"tr[data-id='{onB}'] td[data-label='Node']")).ToHaveTextAsync("node-b");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = BrowserFixture.ArtifactPath("list-two-nodes-light-1280.png"), FullPage = true });
        });
    }

    private static Dictionary<string, string?> Node(TestDatabase db, string nodeId) => new(StringComparer.Ordinal)
    {
        ["Storage:ConnectionString"] = db.Uri,
        ["Cluster:NodeId"] = nodeId,
        ["Scripted:TokensPerSecond"] = "4",
    };
}
