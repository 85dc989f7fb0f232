using System.Diagnostics;
using System.Net.Http.Json;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Xunit.Abstractions;

namespace Holdfast.Cli.Tests;

/// <summary>
/// Bots across <c>holdfast serve</c> nodes (real child processes) on one real PostgreSQL database: a bot's connection
/// runs on the node holding its lease, another node restores it from its stored (encrypted) login state after the
/// holder is killed, the holder is visible in the API and the CLI, and a node with another bot login-state key refuses
/// to start. In the cluster collection (one process-heavy test at a time).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BotClusterTests(ITestOutputHelper output)
{
    [Fact(Timeout = 180_000)]
    public async Task WebBot_HolderKilled_AnotherNodeRestoresItFromItsLoginState_ActiveAndConnectedAgain()
    {
        await using var cluster = await NodeCluster.StartAsync(2, ClusterTests.LeaseSettings("00:00:03", "00:00:01", tokensPerSecond: "10"));
        var started = await cluster.Clients[0].StartBotAsync("wa-failover", "web");
        await PairAsync(cluster.Nodes[0], started);
        var held = await Poll.UntilAsync(
            () => cluster.Clients[1].GetBotAsync("wa-failover"),
            b => b.Holder is not null && b.Connection?.State == "connected",
            "the paired bot connected and held by a node");
        var victim = cluster.Nodes.Single(n => n.NodeId == held.Holder!.NodeId);
        var survivor = cluster.Nodes.Single(n => n != victim);

        var clock = Stopwatch.StartNew();
        await victim.Server.KillAsync();
        Bot restored;
        try
        {
            restored = await Poll.UntilAsync(
                () => cluster.ClientOf(survivor).GetBotAsync("wa-failover"),
                b => b.Holder?.NodeId == survivor.NodeId && b.Connection?.State == "connected" && b.Connection.At > held.Connection!.At,
                "the survivor holds the bot and reconnected it",
                TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            output.WriteLine(survivor.Server.Log);
            throw;
        }

        var takeover = clock.Elapsed;
        output.WriteLine($"bot takeover: held by {survivor.NodeId} {takeover.TotalSeconds:0.0} s after SIGKILL of {victim.NodeId} (lease 3 s)");
        takeover.ShouldBeLessThan(TimeSpan.FromSeconds(3 + 5), "takeover within lease + 5 s");
        restored.Status.ShouldBe(BotStatus.Active);
        restored.Holder!.Epoch.ShouldBeGreaterThan(held.Holder!.Epoch, "a takeover grows the fencing epoch");
        restored.Holder.LeaseExpiresAt.ShouldBeGreaterThan(DateTimeOffset.UtcNow - TimeSpan.FromSeconds(1));
        restored.ConnectionDetail.ShouldNotBeNull().ShouldContain("paired browser", Case.Sensitive, "restored from the stored login state, no new scan");
        restored.QrData.ShouldBeNull();
        survivor.Server.Log.ShouldContain("Restored bot session wa-failover (web)");

        var shown = await CliProcess.RunAsync(["bot", "show", "wa-failover"], survivor.Server.Environment);
        shown.ExitCode.ShouldBe(0, shown.ToString());
        shown.Stdout.ShouldContain($"{survivor.NodeId} (epoch {restored.Holder.Epoch}");
    }

    /// <summary>Pairs a browser with web bot <paramref name="bot"/> through its QR link (on the node that made it).</summary>
    internal static async Task PairAsync(Node node, Bot bot)
    {
        var link = new Uri(bot.QrData.ShouldNotBeNull());
        var token = System.Web.HttpUtility.ParseQueryString(link.Query)["token"];
        using var browser = new HttpClient { BaseAddress = node.Server.Url };
        using var paired = await browser.PostAsJsonAsync($"/pair/{bot.SessionId}/device", new Dictionary<string, string?> { ["token"] = token });
        paired.EnsureSuccessStatusCode();
    }
}
