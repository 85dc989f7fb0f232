using System.Diagnostics;
using System.Globalization;
using Holdfast.Client;
using Holdfast.Storage.Postgres;
using Npgsql;
using ClientModels = Holdfast.Client.Models;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>
/// <c>cluster</c>: three real <c>holdfast serve</c> processes on one PostgreSQL database with 300 sessions running
/// (scripted backend, 10 tokens/s each). Measures the cross-node pause (sent to a node that does not hold the session,
/// until the holder has stopped it: as the client sees it, and on the server from the stored pause to the stored stop)
/// and the takeover after a SIGKILL of the node holding the most sessions (from the kill until every one of its
/// sessions is held again, and how they were spread over the survivors). PostgreSQL comes from
/// <c>HOLDFAST_TEST_POSTGRES</c>, or is started for the run by <c>scripts/test-deps/postgres.sh</c>.
/// </summary>
internal static class ClusterScenarios
{
    public const int NodeCount = 3;
    public const int Sessions = 300;
    public const int Pauses = 100;
    public const int LeaseSeconds = 5;
    public const int RenewSeconds = 1;

    /// <summary>One run's numbers.</summary>
    public sealed record ClusterRun(
        double TakeoverSeconds, int TakenOver, string Spread, double PauseClientP50, double PauseClientP99, double PauseServerP50, double PauseServerP99, string Load);

    /// <summary><c>cluster [--runs N]</c>: runs the scenario N times and prints the table the report writes.</summary>
    public static async Task<int> RunCommandAsync(string[] args)
    {
        var value = args.SkipWhile(a => !string.Equals(a, "--runs", StringComparison.Ordinal)).Skip(1).FirstOrDefault();
        var runs = value is null ? 3 : int.Parse(value, CultureInfo.InvariantCulture);
        var results = await RunManyAsync(runs);
        Console.Write(Table(results));
        return 0;
    }

    /// <summary>Runs the scenario <paramref name="runs"/> times, each on a fresh database with three fresh nodes.</summary>
    public static async Task<List<ClusterRun>> RunManyAsync(int runs)
    {
        await using var server = await PostgresServer.StartAsync();
        var results = new List<ClusterRun>();
        for (var run = 1; run <= runs; run++)
        {
            await Log($"cluster run {run}/{runs}: {NodeCount} nodes, {Sessions} sessions …");
            results.Add(await RunOnceAsync(server.Uri));
            var r = results[^1];
            await Log(Invariant($"  takeover {r.TakeoverSeconds:0.00} s ({r.TakenOver} sessions: {r.Spread}); pause via another node p50 {r.PauseClientP50:0} ms, p99 {r.PauseClientP99:0} ms (server {r.PauseServerP50:0}/{r.PauseServerP99:0} ms); load {r.Load}"));
        }

        return results;
    }

    /// <summary>The Markdown section the report writes into BENCHMARKS.md.</summary>
    public static string Table(IReadOnlyList<ClusterRun> runs)
    {
        var s = new System.Text.StringBuilder();
        s.AppendLine("### Cluster (PostgreSQL, 3 nodes)");
        s.AppendLine();
        s.AppendLine(Invariant($"Three `holdfast serve` processes on one PostgreSQL 15 database (started by `scripts/test-deps/postgres.sh`: fsync and `synchronous_commit` on, on the same machine), {Sessions} sessions running (scripted backend, 10 tokens/s each), `Cluster:LeaseDuration` {LeaseSeconds} s, `Cluster:RenewInterval` {RenewSeconds} s, `Generation:PollInterval` 1 s. Pause: {Pauses} pauses one after another, each sent to a node that does not hold the session, timed until the answer says `paused` (`?wait=`: the holder stopped the run and stored it; client) and from the stored pause to the stored stop (audit events; server); each session is resumed after. Takeover: SIGKILL of the node holding the most sessions, timed until every one of its sessions is held by a survivor (lease expiry, the recovery sweep, the claims). A fresh database and fresh nodes for every run."));
        s.AppendLine();
        s.AppendLine("| run | takeover after SIGKILL | sessions taken over (per survivor) | pause via another node p50 / p99 (client) | p50 / p99 (server) | load average before the run |");
        s.AppendLine("|---:|---:|---|---:|---:|---|");
        for (var i = 0; i < runs.Count; i++)
        {
            var r = runs[i];
            s.AppendLine(Invariant($"| {i + 1} | {r.TakeoverSeconds:0.00} s | {r.TakenOver} ({r.Spread}) | {r.PauseClientP50:0.0} / {r.PauseClientP99:0.0} ms | {r.PauseServerP50:0.0} / {r.PauseServerP99:0.0} ms | {r.Load} |"));
        }

        if (runs.Count > 0)
        {
            s.AppendLine();
            s.AppendLine(Invariant($"Median over {runs.Count} runs: takeover {ReportRunner.Median(runs.Select(r => r.TakeoverSeconds)):0.00} s (lease {LeaseSeconds} s; target ≤ lease + 5 s), cross-node pause p50 {ReportRunner.Median(runs.Select(r => r.PauseClientP50)):0.0} ms and p99 {ReportRunner.Median(runs.Select(r => r.PauseClientP99)):0.0} ms as the client sees it."));
        }

        s.AppendLine();
        return s.ToString();
    }

    private static async Task<ClusterRun> RunOnceAsync(Uri server)
    {
        var load = PeerScenarios.LoadAverage();
        var database = Invariant($"holdfast_bench_cluster_{Guid.NewGuid():N}");
        await AdminAsync(server, $"CREATE DATABASE \"{database}\"");
        var store = new UriBuilder(server) { Path = "/" + database }.Uri;
        var nodes = new List<ServeProcess>();
        try
        {
            // The first node migrates the database; the others start together.
            nodes.Add(await ServeProcess.StartAsync(store));
            nodes.AddRange(await Task.WhenAll(Enumerable.Range(1, NodeCount - 1).Select(_ => ServeProcess.StartAsync(store))));
            await using var data = NpgsqlDataSource.Create(PostgresConnectionString.Parse(store.ToString()).ConnectionString);

            var ids = new List<string>();
            for (var i = 0; i < Sessions; i++)
            {
                var request = new ClientModels.CreateGenerationRequest(
                    "scripted", [new ClientModels.InputMessage("user", Invariant($"Cluster benchmark prompt {i}"))], Parameters: new ClientModels.GenerationParameters(Seed: i));
                ids.Add((await nodes[i % NodeCount].Client.CreateGenerationAsync(request)).Id);
            }

            var holders = await PollAsync(() => HoldersAsync(data, ids), h => h.Count == ids.Count && h.Values.All(v => v is not null), "every session running", TimeSpan.FromMinutes(3));

            // Cross-node pauses: each to a node that does not hold the session, then a resume (so about 300 keep running).
            var client = new List<double>();
            var serverSide = new List<double>();
            for (var i = 0; i < Pauses; i++)
            {
                var id = ids[(i * 7) % ids.Count];
                var holder = (await HoldersAsync(data, [id]))[id];
                if (holder is null)
                {
                    continue;
                }

                var sender = nodes.First(n => n.NodeId != holder);
                var clock = Stopwatch.StartNew();
                var paused = await sender.Client.PauseGenerationAsync(id, wait: TimeSpan.FromSeconds(30));
                var elapsed = clock.Elapsed.TotalMilliseconds;
                if (paused.Status != ClientModels.GenerationStatus.Paused)
                {
                    throw new InvalidOperationException($"pause of {id} via {sender.NodeId} answered {paused.Status}");
                }

                client.Add(elapsed);
                serverSide.Add(await PauseToStoppedMsAsync(data, id));
                await sender.Client.ResumeGenerationAsync(id);
            }

            // Every session running again (resumed ones claimed), then the kill.
            holders = await PollAsync(() => HoldersAsync(data, ids), h => h.Values.All(v => v is not null), "every session running again", TimeSpan.FromMinutes(2));
            var victim = nodes.MaxBy(n => holders.Values.Count(v => v == n.NodeId))!;
            var victims = holders.Where(h => h.Value == victim.NodeId).Select(h => h.Key).ToList();
            var killed = Stopwatch.StartNew();
            victim.Kill();
            var after = await PollAsync(
                () => HoldersAsync(data, victims), h => h.Values.All(v => v is not null && v != victim.NodeId), "the killed node's sessions held again", TimeSpan.FromMinutes(2), TimeSpan.FromMilliseconds(20));
            var takeover = killed.Elapsed.TotalSeconds;
            var spread = string.Join(", ", nodes.Where(n => n != victim).Select(n => after.Values.Count(v => v == n.NodeId).ToString(CultureInfo.InvariantCulture)));
            client.Sort();
            serverSide.Sort();
            return new ClusterRun(
                takeover, victims.Count, spread, Percentiles.Of(client, 50), Percentiles.Of(client, 99), Percentiles.Of(serverSide, 50), Percentiles.Of(serverSide, 99), load);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }

            await AdminAsync(server, $"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
        }
    }

    /// <summary>The holder of each running session (null when not running or not held).</summary>
    private static async Task<Dictionary<string, string?>> HoldersAsync(NpgsqlDataSource data, IReadOnlyCollection<string> ids)
    {
        await using var command = data.CreateCommand("SELECT id, CASE WHEN status = 'running' THEN lease_holder END FROM generation_sessions WHERE id = ANY(@ids)");
        command.Parameters.AddWithValue("ids", ids.ToArray());
        var holders = new Dictionary<string, string?>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            holders[reader.GetString(0)] = await reader.IsDBNullAsync(1) ? null : reader.GetString(1);
        }

        return holders;
    }

    /// <summary>Server side: from the last stored pause (its audit event) to the stored stop (the paused status).</summary>
    private static async Task<double> PauseToStoppedMsAsync(NpgsqlDataSource data, string id)
    {
        await using var command = data.CreateCommand(
            """
            SELECT extract(epoch FROM max(occurred_at) FILTER (WHERE to_state = 'paused') - max(occurred_at) FILTER (WHERE action = 'pause')) * 1000
            FROM session_events WHERE session_kind = 'generation' AND session_id = @id
            """);
        command.Parameters.AddWithValue("id", id);
        return Convert.ToDouble(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private static async Task<T> PollAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what, TimeSpan timeout, TimeSpan? every = null)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }

            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"cluster: not reached within {timeout}: {what}");
            }

            await Task.Delay(every ?? TimeSpan.FromMilliseconds(100));
        }
    }

    private static async Task AdminAsync(Uri server, string sql)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionString.Parse(server.ToString()).ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static async Task Log(string line) => await Console.Error.WriteLineAsync($"[{DateTime.UtcNow:HH:mm:ss}] {line}");

    /// <summary>A PostgreSQL server for the run: <c>HOLDFAST_TEST_POSTGRES</c>, or one <c>scripts/test-deps/postgres.sh</c> starts and stops.</summary>
    private sealed class PostgresServer : IAsyncDisposable
    {
        private readonly Process? _script;

        private PostgresServer(Uri uri, Process? script)
        {
            Uri = uri;
            _script = script;
        }

        public Uri Uri { get; }

        public static async Task<PostgresServer> StartAsync()
        {
            if (Environment.GetEnvironmentVariable("HOLDFAST_TEST_POSTGRES") is { Length: > 0 } given)
            {
                return new PostgresServer(new Uri(given), null);
            }

            // The script starts a private server, runs the command (print the address, wait for stdin to close), and
            // stops the server when the command ends.
            var start = new ProcessStartInfo("bash") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var argument in new[] { Path.Combine(PeerScenarios.Root, "scripts", "test-deps", "postgres.sh"), "bash", "-c", "printf '%s\\n' \"$HOLDFAST_TEST_POSTGRES\"; cat >/dev/null" })
            {
                start.ArgumentList.Add(argument);
            }

            var script = Process.Start(start) ?? throw new InvalidOperationException("could not run scripts/test-deps/postgres.sh");
            var line = await script.StandardOutput.ReadLineAsync();
            if (string.IsNullOrEmpty(line))
            {
                await script.WaitForExitAsync();
                throw new InvalidOperationException($"scripts/test-deps/postgres.sh did not start PostgreSQL (exit {script.ExitCode}); set HOLDFAST_TEST_POSTGRES to use a server of your own");
            }

            return new PostgresServer(new Uri(line), script);
        }

        public async ValueTask DisposeAsync()
        {
            if (_script is not null)
            {
                _script.StandardInput.Close();
                await _script.WaitForExitAsync();
                _script.Dispose();
            }
        }
    }

    /// <summary>One <c>holdfast serve</c> node: its own data directory (so its own node id), a client over its socket.</summary>
    private sealed class ServeProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly ScratchDirectory _data;

        private ServeProcess(Process process, ScratchDirectory data, HoldfastClient client, string nodeId)
        {
            _process = process;
            _data = data;
            Client = client;
            NodeId = nodeId;
        }

        public HoldfastClient Client { get; }

        public string NodeId { get; }

        private static readonly string ClusterBotKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

        public static async Task<ServeProcess> StartAsync(Uri store)
        {
            var data = new ScratchDirectory("cluster-node");
            var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            int port;
            using (var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
            {
                listener.Start();
                port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            }

            foreach (var argument in new[] { CliDll(), "serve", "--backend", "scripted", "--urls", Invariant($"http://127.0.0.1:{port}") })
            {
                start.ArgumentList.Add(argument);
            }

            start.Environment["HOLDFAST_DATA"] = data.Path;
            start.Environment["HOLDFAST_STORE"] = store.ToString();
            start.Environment["Cluster__LeaseDuration"] = Invariant($"00:00:{LeaseSeconds:00}");
            start.Environment["Cluster__RenewInterval"] = Invariant($"00:00:{RenewSeconds:00}");
            // Every node of one database needs the same bot login-state key (a node with another refuses to start).
            start.Environment["Bots__AuthStateKey"] = ClusterBotKey;
            start.Environment["Scripted__TokensPerSecond"] = "10";
            start.Environment["Scripted__MaxTokens"] = "3000";
            start.Environment["Scripted__MaxConcurrency"] = "1000";
            start.Environment["Generation__PollInterval"] = "00:00:01";
            var process = Process.Start(start) ?? throw new InvalidOperationException("could not start holdfast serve");
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var client = HoldfastClient.ForUnixSocket(Path.Combine(data.Path, "holdfast.sock"));
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"holdfast serve exited with {process.ExitCode} before answering");
                }

                try
                {
                    if (await client.PingAsync())
                    {
                        break;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }

                if (deadline.Elapsed > TimeSpan.FromMinutes(2))
                {
                    throw new TimeoutException("holdfast serve did not answer on its socket within 2 min");
                }

                await Task.Delay(200);
            }

            return new ServeProcess(process, data, client, (await File.ReadAllTextAsync(Path.Combine(data.Path, "node-id"))).Trim());
        }

        public void Kill() => _process.Kill();

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            if (!_process.HasExited)
            {
                _process.Kill();
            }

            await _process.WaitForExitAsync();
            _process.Dispose();
            _data.Dispose();
        }

        private static string CliDll()
        {
            var directory = Path.Combine(PeerScenarios.Root, "src", "Holdfast.Cli", "bin", "Release", "net10.0");
            return new[] { "holdfast.dll", "Holdfast.Cli.dll" }.Select(n => Path.Combine(directory, n)).FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException($"holdfast is not built in {directory}; run `dotnet build Holdfast.slnx -c Release` first");
        }
    }
}
