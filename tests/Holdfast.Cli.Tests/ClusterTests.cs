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
/// three nodes, and the handover of a graceful stop. Failover tests start their own nodes (they kill or freeze
/// them); <see cref="ClusterControlTests"/> share three. One collection, so they run one after the other.
/// </summary>
[Collection(ClusterCollection.Name)]
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

        // Spread across the survivors: each claims its fair share (the survivors held equal parts, give or take one),
        // so neither takes more than half of the killed node's sessions, plus one for rounding.
        var bound = ((victimSessions.Count + 1) / 2) + 1;
        foreach (var survivor in survivors)
        {
            takenOver.Values.Count(v => v.Holder == survivor.NodeId).ShouldBeLessThanOrEqualTo(
                bound, $"{survivor.NodeId} took at most {bound} of the {victimSessions.Count} sessions (held before: {string.Join(", ", cluster.Nodes.Select(n => $"{n.NodeId}: {holders.Values.Count(v => v.Holder == n.NodeId)}"))})");
        }

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
        await using var cluster = await NodeCluster.StartAsync(2, LeaseSettings("00:00:03", "00:00:01", tokensPerSecond: "20"));
        var (frozen, other, requestOf) = await StartOnBusiestNodeAsync(cluster, "Split brain", seed: 100);
        var ids = requestOf.Keys.ToList();

        Signal(frozen.Server.ProcessId, "STOP");
        try
        {
            await Poll.UntilAsync(
                () => cluster.HoldersAsync(ids),
                h => h.Values.All(v => v.Holder == other.NodeId || v.Finished),
                "the other node took every session of the frozen one over",
                TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            output.WriteLine(string.Join("\n", (await cluster.HoldersAsync(ids)).Select(h => $"{h.Key}: {h.Value}")));
            output.WriteLine(other.Server.Log);
            throw;
        }
        finally
        {
            Signal(frozen.Server.ProcessId, "CONT");
        }

        await AllCompleteWithTheUninterruptedTextAsync(cluster.ClientOf(other), requestOf);

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
    public async Task GracefulStop_HandsItsSessionsOverAtOnce_NotAfterTheLease()
    {
        // A 30 s lease: a handover that waited for expiry could not finish within the bound below.
        await using var cluster = await NodeCluster.StartAsync(2, LeaseSettings("00:00:30", "00:00:03", tokensPerSecond: "20"));
        var (leaving, staying, requestOf) = await StartOnBusiestNodeAsync(cluster, "Handover", seed: 200);
        var ids = requestOf.Keys.ToList();

        var clock = Stopwatch.StartNew();
        (await leaving.Server.StopAsync()).ShouldBe(0, leaving.Server.Log);
        await Poll.UntilAsync(
            () => cluster.HoldersAsync(ids),
            h => h.Values.All(v => v.Holder == staying.NodeId || v.Finished),
            "the staying node holds every session of the leaving one",
            TimeSpan.FromSeconds(25));
        output.WriteLine($"handover: {ids.Count} sessions held by {staying.NodeId} {clock.Elapsed.TotalSeconds:0.0} s after SIGTERM (lease 30 s)");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(20), "handed over without waiting for the 30 s lease");

        await AllCompleteWithTheUninterruptedTextAsync(cluster.ClientOf(staying), requestOf);
    }

    /// <summary>
    /// Starts four long sessions on a two-node cluster and returns the node holding the most of them (with those
    /// sessions, still running) and the other node.
    /// </summary>
    private static async Task<(Node Busiest, Node Other, Dictionary<string, CreateGenerationRequest> Held)> StartOnBusiestNodeAsync(NodeCluster cluster, string prompt, int seed)
    {
        var requestOf = new Dictionary<string, CreateGenerationRequest>(StringComparer.Ordinal);
        for (var i = 0; i < 4; i++)
        {
            var request = Request($"{prompt} {i}", seed: seed + i, maxTokens: 300);
            requestOf[(await cluster.Clients[i % 2].CreateGenerationAsync(request)).Id] = request;
        }

        var holders = await Poll.UntilAsync(() => cluster.HoldersAsync(requestOf.Keys), h => h.Values.All(v => v.Running && v.Output > 0), "every session runs with output");
        var busiest = cluster.Nodes.MaxBy(n => holders.Values.Count(v => v.Holder == n.NodeId))!;
        var held = requestOf.Where(r => holders[r.Key].Holder == busiest.NodeId).ToDictionary(r => r.Key, r => r.Value, StringComparer.Ordinal);
        held.ShouldNotBeEmpty();
        return (busiest, cluster.Nodes.Single(n => n != busiest), held);
    }

    private static async Task AllCompleteWithTheUninterruptedTextAsync(HoldfastClient client, Dictionary<string, CreateGenerationRequest> requestOf)
    {
        var finished = await Poll.UntilAsync(
            () => Task.WhenAll(requestOf.Keys.Select(id => client.GetGenerationAsync(id))),
            all => all.All(g => g.Status == GenerationStatus.Completed),
            "every session completed",
            TimeSpan.FromSeconds(90));
        foreach (var generation in finished)
        {
            generation.Output.ShouldBe(Expected(requestOf[generation.Id]), $"session {generation.Id}");
        }
    }

    internal static Dictionary<string, string?> LeaseSettings(string lease, string renew, string tokensPerSecond) => new(StringComparer.Ordinal)
    {
        ["Cluster__LeaseDuration"] = lease,
        ["Cluster__RenewInterval"] = renew,
        ["Scripted__TokensPerSecond"] = tokensPerSecond,
        ["Scripted__MaxTokens"] = ScriptedMaxTokens.ToString(CultureInfo.InvariantCulture),
        ["Generation__PollInterval"] = "00:00:00.500",
    };

    internal static CreateGenerationRequest Request(string prompt, long seed, int maxTokens) =>
        new("scripted", [new InputMessage("user", prompt)], Parameters: new GenerationParameters(Seed: seed, MaxTokens: maxTokens));

    /// <summary>The text an uninterrupted scripted run of <paramref name="request"/> produces.</summary>
    internal static string Expected(CreateGenerationRequest request)
    {
        var conversation = request.Input!.Select(m => new Microsoft.Extensions.AI.ChatMessage(new Microsoft.Extensions.AI.ChatRole(m.Role), m.Content)).ToList();
        return string.Concat(Holdfast.Generation.Backends.ScriptedChatClient.Plan(
            conversation, string.Empty, request.Parameters?.Seed, request.Parameters?.MaxTokens, ScriptedMaxTokens, null).Chunks);
    }

    internal static async Task<string> FollowTextAsync(HoldfastClient client, string id)
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

    internal static void Signal(int processId, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", processId.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        kill.ExitCode.ShouldBe(0, $"kill -{signal} {processId}");
    }
}

/// <summary>The cluster tests run one after the other (each starts several server processes).</summary>
[CollectionDefinition(Name)]
public sealed class ClusterCollection
{
    public const string Name = "cluster";
}

/// <summary>Three nodes on one database, shared by <see cref="ClusterControlTests"/> (nothing there kills a node).</summary>
public sealed class ThreeNodeClusterFixture : IAsyncLifetime
{
    private NodeCluster? _cluster;

    internal NodeCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster is not started.");

    public async Task InitializeAsync() => _cluster = await NodeCluster.StartAsync(3, ClusterTests.LeaseSettings("00:00:10", "00:00:03", tokensPerSecond: "10"));

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}

/// <summary>Controls, readers and idempotency across three live nodes on one PostgreSQL database.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterControlTests(ThreeNodeClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ThreeNodeClusterFixture>
{
    [Fact(Timeout = 180_000)]
    public async Task PauseSentToAnotherNode_HolderStopsWithinASecond_ReaderOnAThirdNodeSeesTheExactText()
    {
        var cluster = fixture.Cluster;
        var request = ClusterTests.Request("Pause across nodes", seed: 7, maxTokens: 400);
        var id = (await cluster.Clients[0].CreateGenerationAsync(request)).Id;
        var holding = await Poll.UntilAsync(() => cluster.HoldersAsync([id]), h => h[id].Holder is not null && h[id].Output > 0, "the session runs with output");
        var holder = cluster.Nodes.Single(n => n.NodeId == holding[id].Holder);
        var (sender, readerNode) = (cluster.Nodes.First(n => n != holder), cluster.Nodes.Last(n => n != holder));
        var reader = ClusterTests.FollowTextAsync(cluster.ClientOf(readerNode), id);
        await Poll.UntilAsync(async () => (await cluster.HoldersAsync([id]))[id].Output > 20, "more output");

        // Visible from any node: the holder in the API, the nodes in `holdfast nodes` and /metrics.
        var seen = await cluster.ClientOf(sender).GetGenerationAsync(id);
        seen.Holder.ShouldNotBeNull();
        seen.Holder.NodeId.ShouldBe(holder.NodeId);
        var environment = new Dictionary<string, string?>(sender.Server.Environment, StringComparer.Ordinal) { ["HOLDFAST_STORE"] = cluster.Database.Uri };
        var listed = await CliProcess.RunAsync(["nodes", "--json"], environment);
        listed.ExitCode.ShouldBe(0, listed.ToString());
        var nodes = System.Text.Json.JsonSerializer.Deserialize<List<ClusterNodeInfo>>(listed.Stdout, HoldfastJson.Options)!;
        nodes.Select(n => n.NodeId).Order(StringComparer.Ordinal).ShouldBe(cluster.Nodes.Select(n => n.NodeId).Order(StringComparer.Ordinal));
        nodes.ShouldAllBe(n => n.Alive);
        // The fixture's nodes are shared with the other tests of this class, whose sessions may still be running.
        var held = nodes.Single(n => n.NodeId == holder.NodeId).SessionsHeld;
        held.ShouldBeGreaterThanOrEqualTo(1);
        using (var http = new HttpClient { BaseAddress = readerNode.Server.Url })
        {
            var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
            var line = metrics.Split('\n').Single(l => l.StartsWith($"holdfast_node_sessions_held{{node=\"{holder.NodeId}\"}} ", StringComparison.Ordinal));
            long.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThanOrEqualTo(1);
        }

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

    /// <summary>
    /// The durable request is the session row: a pause stored with no notification at all (as when the node that stored
    /// it dies before its batched <c>NOTIFY</c> goes out) is still honoured by the holder, through its periodic check
    /// every <c>Generation:PollInterval</c> (500 ms here). Written the way the store writes a pause of a running
    /// session (desired state, reason, version), by SQL from the test, so no node sends a notification.
    /// </summary>
    [Fact(Timeout = 120_000)]
    public async Task PauseStoredWithoutANotification_HolderStopsOnItsNextPoll()
    {
        var cluster = fixture.Cluster;
        var id = (await cluster.Clients[1].CreateGenerationAsync(ClusterTests.Request("Lost notification", seed: 11, maxTokens: 400))).Id;
        await Poll.UntilAsync(() => cluster.HoldersAsync([id]), h => h[id].Holder is not null && h[id].Output > 0, "the session runs with output");

        var clock = Stopwatch.StartNew();
        (await cluster.StorePauseWithoutNotifyAsync(id)).ShouldBe(1);

        var stopped = await Poll.UntilAsync(
            () => cluster.HoldersAsync([id]), h => !h[id].Running, "the holder stops the run", TimeSpan.FromSeconds(20));
        var elapsed = clock.Elapsed;
        output.WriteLine($"pause stored without NOTIFY: the holder stopped the run {elapsed.TotalMilliseconds:0} ms later (poll interval 500 ms)");
        (await cluster.Clients[0].GetGenerationAsync(id)).Status.ShouldBe(GenerationStatus.Paused);
        stopped[id].Holder.ShouldBeNull();
        elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(5), "honoured by the next poll (500 ms), not left running");
        await cluster.Clients[2].CancelGenerationAsync(id, wait: TimeSpan.FromSeconds(10));
    }

    [Fact(Timeout = 120_000)]
    public async Task FiveConcurrentStartsWithOneIdempotencyKey_OverThreeNodes_OneSession()
    {
        var cluster = fixture.Cluster;
        var request = ClusterTests.Request("Once only", seed: 3, maxTokens: 20);

        var started = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => Task.Run(() => cluster.Clients[i % 3].CreateGenerationAsync(request, idempotencyKey: "one-key"))));

        started.Select(g => g.Id).Distinct().Count().ShouldBe(1);
        (await cluster.Database.ScalarAsync("SELECT count(*) FROM generation_sessions WHERE idempotency_key = 'one-key'")).ShouldBe(1L);
    }

    [Fact(Timeout = 120_000)]
    public async Task NodeWithAnotherBotKey_RefusesToStartWithOneLineNamingTheSetting()
    {
        var cluster = fixture.Cluster;
        using var data = new TempDirectory();
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["HOLDFAST_DATA"] = data.Path,
            ["HOLDFAST_STORE"] = cluster.Database.Uri,
            ["Bots__AuthStateKey"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
        };

        var refused = await CliProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0"], environment, timeout: TimeSpan.FromSeconds(60));

        output.WriteLine(refused.ToString());
        refused.ExitCode.ShouldNotBe(0);
        var lines = refused.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Length.ShouldBe(1, refused.ToString());
        lines[0].ShouldContain("Bots:AuthStateKey");
        lines[0].ShouldContain("does not match");
        (refused.Stdout + refused.Stderr).ShouldNotContain("   at ", Case.Sensitive, "no stack trace");
        (await cluster.Database.ScalarAsync("SELECT count(*) FROM store_settings WHERE name = 'bot_auth_key_fingerprint'")).ShouldBe(1L);
    }
}

/// <summary>One node: its server process and the id it holds leases under (kept in its data directory).</summary>
internal sealed record Node(ServerProcess Server, string NodeId);

/// <summary>What the database says about one session's run.</summary>
internal sealed record RunState(string? Holder, bool Running, bool Finished, int Output);

/// <summary>Nodes on one fresh PostgreSQL database, each with a client over its Unix socket.</summary>
internal sealed class NodeCluster : IAsyncDisposable
{
    private readonly IReadOnlyDictionary<string, string?> _settings;

    private NodeCluster(TestDatabase database, IReadOnlyDictionary<string, string?> settings)
    {
        Database = database;
        _settings = settings;
    }

    public TestDatabase Database { get; }

    /// <summary>The bot login-state key every node of this cluster is started with.</summary>
    public string AuthStateKey { get; } = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

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
        // Every node of one database needs the same bot login-state key (a node with another one refuses to start).
        var settings = new Dictionary<string, string?>(_settings, StringComparer.Ordinal) { ["HOLDFAST_STORE"] = Database.Uri };
        settings.TryAdd("Bots__AuthStateKey", AuthStateKey);
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
            // The whole output's length: the folded text and a running session's chunk rows after it (migration 0015).
            """
            SELECT s.id, s.lease_holder, s.status, length(s.output) + COALESCE((SELECT sum(length(t.payload))::int FROM generation_log t
                WHERE t.session_id = s.id AND t.seq > s.output_seq AND t.type = 'chunk'), 0)
            FROM generation_sessions s WHERE s.id = ANY(@ids)
            """,
            connection);
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

    /// <summary>
    /// Stores a pause of a running session the way the store does (desired state, reason, version), with no
    /// <c>NOTIFY</c>: what the holder sees when the notification of a stored pause is lost. Returns the rows changed.
    /// </summary>
    public async Task<int> StorePauseWithoutNotifyAsync(string id)
    {
        await using var connection = new NpgsqlConnection(Database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            UPDATE generation_sessions SET desired_state = 'paused', pause_reason = 'user', version = version + 1, updated_at = now()
            WHERE id = @id AND status = 'running' AND desired_state = 'running'
            """,
            connection);
        command.Parameters.AddWithValue("id", id);
        return await command.ExecuteNonQueryAsync();
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
