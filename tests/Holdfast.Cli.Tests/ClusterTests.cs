using System.Diagnostics;
using System.Globalization;
using Holdfast.Client;
using Holdfast.Client.Models;
using Holdfast.Client.Streaming;
using Holdfast.TestHelpers;
using Npgsql;
using Xunit.Abstractions;

namespace Holdfast.Cli.Tests;

/// <summary>
/// Several <c>holdfast serve</c> nodes (real child processes, each with its own data directory and so its own node id)
/// on one real PostgreSQL database (needs <c>HOLDFAST_TEST_POSTGRES</c>, see <see cref="TestPostgres"/>): failover
/// after SIGKILL, split brain after SIGSTOP, a pause sent to another node than the holder, one idempotency key over
/// three nodes, and the handover of a graceful stop. One class, so its tests run one after the other.
/// </summary>
public sealed class ClusterTests(ITestOutputHelper output)
{
    private const int ScriptedMaxTokens = 200;

    [Fact(Timeout = 180_000)]
    public async Task ThreeNodes_OneKilledMidRun_AllThirtyFinishWithTheUninterruptedText()
    {
        await using var cluster = await NodeCluster.StartAsync(3, LeaseSettings("00:00:03", "00:00:01", tokensPerSecond: "10"));
        var requests = Enumerable.Range(0, 30).Select(i => Request($"Failover {i}", seed: i, maxTokens: 100)).ToList();
        var ids = new List<string>();
        for (var i = 0; i < requests.Count; i++)
        {
            ids.Add((await cluster.Clients[i % 3].CreateGenerationAsync(requests[i])).Id);
        }

        // The victim is the node holding the most sessions once every session runs with some output.
        var holders = await Poll.UntilAsync(
            () => cluster.HoldersAsync(ids),
            h => h.Count == ids.Count && h.Values.All(v => v.Running && v.Output > 0),
            "all 30 sessions running with output");
        var victim = cluster.Nodes.MaxBy(n => holders.Values.Count(v => v.Holder == n.NodeId))!;
        var victimSessions = holders.Where(h => h.Value.Holder == victim.NodeId).Select(h => h.Key).ToList();
        victimSessions.ShouldNotBeEmpty();
        var survivors = cluster.Nodes.Where(n => n != victim).ToList();

        // A reader on a survivor follows one of the victim's sessions across the seam.
        var followed = victimSessions[0];
        var reader = FollowTextAsync(cluster.ClientOf(survivors[0]), followed);

        var killedAt = Stopwatch.StartNew();
        await victim.Server.KillAsync();
        var takenOver = await Poll.UntilAsync(
            () => cluster.HoldersAsync(victimSessions),
            h => h.Values.All(v => v.Holder != victim.NodeId && (v.Holder is not null || v.Finished)),
            "every session of the killed node taken over",
            TimeSpan.FromSeconds(60));
        var takeover = killedAt.Elapsed;
        output.WriteLine($"takeover: {victimSessions.Count} sessions of {victim.NodeId} held again {takeover.TotalSeconds:0.0} s after SIGKILL (lease 3 s)");
        takeover.ShouldBeLessThan(TimeSpan.FromSeconds(3 + 5), "takeover within lease + 5 s");
        output.WriteLine($"spread: {string.Join(", ", takenOver.Values.GroupBy(v => v.Holder ?? "(finished)").Select(g => $"{g.Key}: {g.Count()}"))}");

        var finished = await Poll.UntilAsync(
            () => Task.WhenAll(ids.Select(id => cluster.ClientOf(survivors[0]).GetGenerationAsync(id))),
            all => all.All(g => g.Status == GenerationStatus.Completed),
            "all 30 sessions completed",
            TimeSpan.FromSeconds(90));

        for (var i = 0; i < ids.Count; i++)
        {
            finished[i].Output.ShouldBe(Expected(requests[i]), $"session {ids[i]} (held by the killed node: {victimSessions.Contains(ids[i])})");
        }

        (await reader).ShouldBe(Expected(requests[ids.IndexOf(followed)]), "the reader on a survivor saw no text twice at the seam");
    }

    [Fact(Timeout = 180_000)]
    public async Task SplitBrain_HolderFrozenPastItsLease_ItsWritesAreRejectedAndItGivesTheSessionsUp()
    {
        await using var cluster = await NodeCluster.StartAsync(1, LeaseSettings("00:00:03", "00:00:01", tokensPerSecond: "20"));
        var frozen = cluster.Nodes[0];
        var requests = Enumerable.Range(0, 4).Select(i => Request($"Split brain {i}", seed: 100 + i, maxTokens: 300)).ToList();
        var ids = new List<string>();
        foreach (var request in requests)
        {
            ids.Add((await cluster.Clients[0].CreateGenerationAsync(request)).Id);
        }

        await Poll.UntilAsync(() => cluster.HoldersAsync(ids), h => h.Values.All(v => v.Holder == frozen.NodeId && v.Output > 0), "the first node holds every session");
        var other = await cluster.AddNodeAsync();
        (await cluster.HoldersAsync(ids)).Values.ShouldAllBe(v => v.Running && v.Holder == frozen.NodeId, "every session still runs on the first node when it is frozen");

        Signal(frozen.Server.ProcessId, "STOP");
        try
        {
            await Poll.UntilAsync(
                () => cluster.HoldersAsync(ids),
                h => h.Values.All(v => v.Holder == other.NodeId || v.Finished),
                "the other node took every session over",
                TimeSpan.FromSeconds(60));
        }
        finally
        {
            Signal(frozen.Server.ProcessId, "CONT");
        }

        var client = cluster.ClientOf(other);
        var finished = await Poll.UntilAsync(
            () => Task.WhenAll(ids.Select(id => client.GetGenerationAsync(id))),
            all => all.All(g => g.Status == GenerationStatus.Completed),
            "every session completed",
            TimeSpan.FromSeconds(90));
        for (var i = 0; i < ids.Count; i++)
        {
            finished[i].Output.ShouldBe(Expected(requests[i]), $"session {ids[i]}");
        }

        // The thawed node noticed: its leases were gone, its runs stopped, and it wrote nothing for them.
        try
        {
            await Poll.UntilAsync(() => Task.FromResult(ids.Any(id => frozen.Server.Log.Contains($"The lease on generation session {id}", StringComparison.Ordinal))), "the thawed node logs the lost lease", TimeSpan.FromSeconds(20));
        }
        catch (TimeoutException)
        {
            output.WriteLine(frozen.Server.Log);
            throw;
        }

        (await cluster.HoldersAsync(ids)).Values.ShouldAllBe(v => v.Holder == null);
    }

    [Fact(Timeout = 180_000)]
    public async Task PauseSentToAnotherNode_HolderStopsWithinASecond_ReaderOnAThirdNodeSeesTheExactText()
    {
        await using var cluster = await NodeCluster.StartAsync(3, LeaseSettings("00:00:10", "00:00:03", tokensPerSecond: "10"));
        var request = Request("Pause across nodes", seed: 7, maxTokens: 400);
        var id = (await cluster.Clients[0].CreateGenerationAsync(request)).Id;
        var holding = await Poll.UntilAsync(() => cluster.HoldersAsync([id]), h => h[id].Holder is not null && h[id].Output > 0, "the session runs with output");
        var holder = cluster.Nodes.Single(n => n.NodeId == holding[id].Holder);
        var (sender, readerNode) = (cluster.Nodes.First(n => n != holder), cluster.Nodes.Last(n => n != holder));
        var reader = FollowTextAsync(cluster.ClientOf(readerNode), id);
        await Poll.UntilAsync(async () => (await cluster.HoldersAsync([id]))[id].Output > 20, "more output");

        var clock = Stopwatch.StartNew();
        var paused = await cluster.ClientOf(sender).PauseGenerationAsync(id, wait: TimeSpan.FromSeconds(10));
        var clientSide = clock.Elapsed;

        paused.Status.ShouldBe(GenerationStatus.Paused);
        var serverSide = await cluster.PauseToStoppedAsync(id);
        output.WriteLine($"pause sent to {sender.NodeId}, held by {holder.NodeId}: stopped {serverSide.TotalMilliseconds:0} ms after the pause was stored ({clientSide.TotalMilliseconds:0} ms seen by the client)");
        serverSide.ShouldBeLessThan(TimeSpan.FromSeconds(1), "the holder stops its upstream within 1 s");

        var stored = (await cluster.ClientOf(readerNode).GetGenerationAsync(id)).Output;
        await cluster.ClientOf(readerNode).CancelGenerationAsync(id, wait: TimeSpan.FromSeconds(10));
        (await reader).ShouldBe(stored, "the reader on the third node got exactly the stored text");
    }

    [Fact(Timeout = 120_000)]
    public async Task FiveConcurrentStartsWithOneIdempotencyKey_OverThreeNodes_OneSession()
    {
        await using var cluster = await NodeCluster.StartAsync(3, LeaseSettings("00:00:10", "00:00:03", tokensPerSecond: "50"));
        var request = Request("Once only", seed: 3, maxTokens: 20);

        var started = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => Task.Run(() => cluster.Clients[i % 3].CreateGenerationAsync(request, idempotencyKey: "one-key"))));

        started.Select(g => g.Id).Distinct().Count().ShouldBe(1);
        (await cluster.Database.ScalarAsync("SELECT count(*) FROM generation_sessions")).ShouldBe(1L);
    }

    [Fact(Timeout = 180_000)]
    public async Task GracefulStop_HandsItsSessionsOverAtOnce_NotAfterTheLease()
    {
        // A 30 s lease: a handover that waited for expiry could not finish within the bound below.
        await using var cluster = await NodeCluster.StartAsync(1, LeaseSettings("00:00:30", "00:00:03", tokensPerSecond: "20"));
        var leaving = cluster.Nodes[0];
        var requests = Enumerable.Range(0, 4).Select(i => Request($"Handover {i}", seed: 200 + i, maxTokens: 300)).ToList();
        var ids = new List<string>();
        foreach (var request in requests)
        {
            ids.Add((await cluster.Clients[0].CreateGenerationAsync(request)).Id);
        }

        await Poll.UntilAsync(() => cluster.HoldersAsync(ids), h => h.Values.All(v => v.Holder == leaving.NodeId && v.Output > 0), "the first node holds every session");
        var staying = await cluster.AddNodeAsync();
        (await cluster.HoldersAsync(ids)).Values.ShouldAllBe(v => v.Running && v.Holder == leaving.NodeId, "every session still runs on the leaving node when it stops");

        var clock = Stopwatch.StartNew();
        (await leaving.Server.StopAsync()).ShouldBe(0, leaving.Server.Log);
        await Poll.UntilAsync(
            () => cluster.HoldersAsync(ids),
            h => h.Values.All(v => v.Holder == staying.NodeId || v.Finished),
            "the staying node holds every session",
            TimeSpan.FromSeconds(25));
        output.WriteLine($"handover: {ids.Count} sessions held by {staying.NodeId} {clock.Elapsed.TotalSeconds:0.0} s after SIGTERM (lease 30 s)");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(20), "handed over without waiting for the 30 s lease");

        var client = cluster.ClientOf(staying);
        var finished = await Poll.UntilAsync(
            () => Task.WhenAll(ids.Select(id => client.GetGenerationAsync(id))),
            all => all.All(g => g.Status == GenerationStatus.Completed),
            "every session completed",
            TimeSpan.FromSeconds(60));
        for (var i = 0; i < ids.Count; i++)
        {
            finished[i].Output.ShouldBe(Expected(requests[i]), $"session {ids[i]}");
        }
    }

    private static Dictionary<string, string?> LeaseSettings(string lease, string renew, string tokensPerSecond) => new(StringComparer.Ordinal)
    {
        ["Cluster__LeaseDuration"] = lease,
        ["Cluster__RenewInterval"] = renew,
        ["Scripted__TokensPerSecond"] = tokensPerSecond,
        ["Scripted__MaxTokens"] = ScriptedMaxTokens.ToString(CultureInfo.InvariantCulture),
        ["Generation__PollInterval"] = "00:00:00.500",
    };

    private static CreateGenerationRequest Request(string prompt, long seed, int maxTokens) =>
        new("scripted", [new InputMessage("user", prompt)], Parameters: new GenerationParameters(Seed: seed, MaxTokens: maxTokens));

    /// <summary>The text an uninterrupted scripted run of <paramref name="request"/> produces.</summary>
    private static string Expected(CreateGenerationRequest request)
    {
        var conversation = request.Input!.Select(m => new Microsoft.Extensions.AI.ChatMessage(new Microsoft.Extensions.AI.ChatRole(m.Role), m.Content)).ToList();
        return string.Concat(Holdfast.Generation.Backends.ScriptedChatClient.Plan(
            conversation, string.Empty, request.Parameters?.Seed, request.Parameters?.MaxTokens, ScriptedMaxTokens, null).Chunks);
    }

    private static async Task<string> FollowTextAsync(HoldfastClient client, string id)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var text = new System.Text.StringBuilder();
        await foreach (var e in client.FollowAsync(id, cancellationToken: limit.Token))
        {
            if (e is GenerationChunkEvent chunk)
            {
                text.Append(chunk.Text);
            }
        }

        return text.ToString();
    }

    private static void Signal(int processId, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", processId.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        kill.ExitCode.ShouldBe(0, $"kill -{signal} {processId}");
    }

    /// <summary>One node: its server process and the id it holds leases under (kept in its data directory).</summary>
    private sealed record Node(ServerProcess Server, string NodeId);

    /// <summary>What the database says about one session's run.</summary>
    private sealed record RunState(string? Holder, bool Running, bool Finished, int Output);

    /// <summary>Nodes on one fresh PostgreSQL database, each with a client over its Unix socket.</summary>
    private sealed class NodeCluster : IAsyncDisposable
    {
        private readonly IReadOnlyDictionary<string, string?> _settings;

        private NodeCluster(TestDatabase database, IReadOnlyDictionary<string, string?> settings)
        {
            Database = database;
            _settings = settings;
        }

        public TestDatabase Database { get; }

        public List<Node> Nodes { get; } = [];

        public List<HoldfastClient> Clients { get; } = [];

        public static async Task<NodeCluster> StartAsync(int nodes, IReadOnlyDictionary<string, string?> settings)
        {
            var cluster = new NodeCluster(await TestPostgres.CreateDatabaseAsync("holdfast_cluster"), settings);
            try
            {
                // The first node migrates the database; the others start together.
                await cluster.AddNodeAsync();
                await Task.WhenAll(Enumerable.Range(1, nodes - 1).Select(_ => cluster.AddNodeAsync()));
                return cluster;
            }
            catch
            {
                await cluster.DisposeAsync();
                throw;
            }
        }

        public async Task<Node> AddNodeAsync()
        {
            var settings = new Dictionary<string, string?>(_settings, StringComparer.Ordinal) { ["HOLDFAST_STORE"] = Database.Uri };
            var server = await ServerProcess.StartNewAsync(settings: settings);
            var node = new Node(server, (await File.ReadAllTextAsync(server.Data.File("node-id"))).Trim());
            lock (Nodes)
            {
                Nodes.Add(node);
                Clients.Add(HoldfastClient.ForUnixSocket(server.SocketPath));
            }

            return node;
        }

        public HoldfastClient ClientOf(Node node) => Clients[Nodes.IndexOf(node)];

        public async Task<Dictionary<string, RunState>> HoldersAsync(IReadOnlyCollection<string> ids)
        {
            await using var connection = new NpgsqlConnection(Database.ConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                "SELECT id, lease_holder, status, length(output) FROM generation_sessions WHERE id = ANY(@ids)", connection);
            command.Parameters.AddWithValue("ids", ids.ToArray());
            var states = new Dictionary<string, RunState>(StringComparer.Ordinal);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var status = reader.GetString(2);
                states[reader.GetString(0)] = new RunState(
                    await reader.IsDBNullAsync(1) ? null : reader.GetString(1), status == "running", status is "completed" or "cancelled", reader.GetInt32(3));
            }

            return states;
        }

        /// <summary>Server-side time from the stored pause (its audit event) to the stored stop (the paused status).</summary>
        public async Task<TimeSpan> PauseToStoppedAsync(string id)
        {
            await using var connection = new NpgsqlConnection(Database.ConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                """
                SELECT max(occurred_at) FILTER (WHERE action = 'pause'), max(occurred_at) FILTER (WHERE to_state = 'paused')
                FROM session_events WHERE session_id = @id
                """,
                connection);
            command.Parameters.AddWithValue("id", id);
            await using var reader = await command.ExecuteReaderAsync();
            await reader.ReadAsync();
            return await reader.GetFieldValueAsync<DateTimeOffset>(1) - await reader.GetFieldValueAsync<DateTimeOffset>(0);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var client in Clients)
            {
                client.Dispose();
            }

            foreach (var node in Nodes)
            {
                await node.Server.DisposeAsync();
            }

            await Database.DisposeAsync();
        }
    }
}
