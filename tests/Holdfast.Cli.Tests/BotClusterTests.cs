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
    public async Task WebBot_HolderFrozenThenKilled_TheOtherNodeRestoresItFromItsLoginStateEachTime_TheThawedOneDropsIt()
    {
        await using var cluster = await NodeCluster.StartAsync(2, ClusterTests.LeaseSettings("00:00:03", "00:00:01", tokensPerSecond: "10"));
        var held = await StartPairedBotAsync(cluster);
        var first = cluster.Nodes.Single(n => n.NodeId == held.Holder!.NodeId);
        var second = cluster.Nodes.Single(n => n != first);

        // Split brain: the holder frozen past its lease; the other node takes the bot over; the thawed one notices.
        ClusterTests.Signal(first.Server.ProcessId, "STOP");
        Bot takenOver;
        try
        {
            (takenOver, var frozenFor) = await TakeOverAsync(cluster, second, held);
            output.WriteLine($"bot takeover: {second.NodeId} holds it {frozenFor.TotalSeconds:0.0} s after SIGSTOP of {first.NodeId} (lease 3 s)");
        }
        finally
        {
            ClusterTests.Signal(first.Server.ProcessId, "CONT");
        }

        await Poll.UntilAsync(
            () => Task.FromResult(first.Server.Log.Contains("The lease on bot session wa-failover", StringComparison.Ordinal)),
            "the thawed node logs the lost bot lease",
            TimeSpan.FromSeconds(20));
        (await cluster.ClientOf(second).GetBotAsync("wa-failover")).Holder.ShouldNotBeNull().Epoch.ShouldBe(takenOver.Holder!.Epoch, "the thawed node took nothing back");

        // Failover: the new holder killed; the first node restores the bot again from its login state.
        await second.Server.KillAsync();
        var (restored, takeover) = await TakeOverAsync(cluster, first, takenOver);
        output.WriteLine($"bot takeover: {first.NodeId} holds it {takeover.TotalSeconds:0.0} s after SIGKILL of {second.NodeId} (lease 3 s)");
        takeover.ShouldBeLessThan(TimeSpan.FromSeconds(3 + 5), "takeover within lease + 5 s");
        restored.Status.ShouldBe(BotStatus.Active);
        restored.Connection.ShouldNotBeNull().State.ShouldBe("connected");
        restored.ConnectionDetail.ShouldNotBeNull().ShouldContain("paired browser", Case.Sensitive, "restored from the stored login state, no new scan");
        restored.QrData.ShouldBeNull();

        var shown = await CliProcess.RunAsync(["bot", "show", "wa-failover"], first.Server.Environment);
        shown.ExitCode.ShouldBe(0, shown.ToString());
        shown.Stdout.ShouldContain($"{first.NodeId} (epoch {restored.Holder!.Epoch}");
    }

    [Fact(Timeout = 180_000)]
    public async Task WebBot_HolderStoppedGracefully_TheOtherNodeRestoresItAtOnce_NotAfterTheLease()
    {
        // A 30 s lease: a handover that waited for expiry could not finish within the bound below.
        await using var cluster = await NodeCluster.StartAsync(2, ClusterTests.LeaseSettings("00:00:30", "00:00:03", tokensPerSecond: "10"));
        var held = await StartPairedBotAsync(cluster);
        var leaving = cluster.Nodes.Single(n => n.NodeId == held.Holder!.NodeId);
        var staying = cluster.Nodes.Single(n => n != leaving);

        var clock = Stopwatch.StartNew();
        (await leaving.Server.StopAsync()).ShouldBe(0, leaving.Server.Log);
        var (restored, _) = await TakeOverAsync(cluster, staying, held);
        output.WriteLine($"bot handover: {staying.NodeId} restored it {clock.Elapsed.TotalSeconds:0.0} s after SIGTERM of {leaving.NodeId} (lease 30 s)");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(20), "handed over without waiting for the 30 s lease");
        restored.Status.ShouldBe(BotStatus.Active);
        restored.Connection.ShouldNotBeNull().State.ShouldBe("connected");
        restored.QrData.ShouldBeNull("restored from the stored login state, no new scan");
    }

    /// <summary>Starts web bot <c>wa-failover</c> on the first node, pairs it, and returns it once connected and held.</summary>
    private static async Task<Bot> StartPairedBotAsync(NodeCluster cluster)
    {
        var started = await cluster.Clients[0].StartBotAsync("wa-failover", "web");
        await PairAsync(cluster.Nodes[0], started);
        return await Poll.UntilAsync(
            () => cluster.Clients[1].GetBotAsync("wa-failover"),
            b => b.Holder is not null && b.Connection?.State == "connected",
            "the paired bot connected and held by a node");
    }

    /// <summary>
    /// Waits until <paramref name="node"/> holds the bot under a newer epoch than <paramref name="before"/> and its web
    /// connector restored it (from the login state it decrypted: a state it could not read would fail the connect).
    /// Returns the bot and how long the lease took to move.
    /// </summary>
    private async Task<(Bot Bot, TimeSpan Takeover)> TakeOverAsync(NodeCluster cluster, Node node, Bot before)
    {
        var clock = Stopwatch.StartNew();
        var restoredLines = CountRestored(node);
        try
        {
            await Poll.UntilAsync(
                () => cluster.ClientOf(node).GetBotAsync("wa-failover"),
                b => b.Holder?.NodeId == node.NodeId && b.Holder.Epoch > before.Holder!.Epoch,
                $"{node.NodeId} holds the bot",
                TimeSpan.FromSeconds(30));
            var takeover = clock.Elapsed;
            await Poll.UntilAsync(() => Task.FromResult(CountRestored(node) > restoredLines), $"{node.NodeId}'s connector restored the bot");
            return (await cluster.ClientOf(node).GetBotAsync("wa-failover"), takeover);
        }
        catch (TimeoutException)
        {
            output.WriteLine(node.Server.Log);
            throw;
        }
    }

    private static int CountRestored(Node node) =>
        node.Server.Log.Split("Restored bot session wa-failover (web)").Length - 1;

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
