using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Holdfast.Generation;
using Holdfast.Sessions;
using Microsoft.Data.Sqlite;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>What one side of a pair measured: durable tokens/s, reads of the latest state, bytes on disk.</summary>
internal sealed record DurableRun(string Side, string Synchronous, long Tokens, long TextBytes, double TokensPerSecond, double ReadP50Ms, double ReadP99Ms, long BytesOnDisk, string LoadAverage)
{
    /// <summary>Holdfast only: from the first create until every session was created (stored), in ms.</summary>
    public double CreatedMs { get; init; }

    /// <summary>Holdfast only: group commits in the timed window.</summary>
    public long Commits { get; init; }
}

/// <summary>
/// Holdfast against its peers in the same run: LangGraph.js checkpointers (bench/peers) and the raw SQLite limit of
/// this disk, with the same streamed-token workload (one durable write per token, 100 threads/sessions at once).
/// </summary>
internal static class PeerScenarios
{
    private static readonly Actor Bench = new("bench");

    /// <summary>Installs the peers (npm) once: bench/peers/setup.sh.</summary>
    public static async Task SetupAsync()
    {
        var (code, _, error) = await RunAsync("bash", [Path.Combine(Root, "bench", "peers", "setup.sh")], TimeSpan.FromMinutes(15));
        if (code != 0)
        {
            throw new InvalidOperationException($"bench/peers/setup.sh failed ({code}): {error}");
        }
    }

    /// <summary>LangGraph.js SqliteSaver: <paramref name="threads"/> threads × <paramref name="tokens"/> tokens, one put per token.</summary>
    public static async Task<DurableRun> SqliteSaverAsync(string synchronous, int threads, int tokens)
    {
        using var directory = new ScratchDirectory("peer");
        return await PeerAsync(
            ["sqlite", "--file", Path.Combine(directory.Path, "peer.db"), "--synchronous", synchronous, "--threads", Invariant(threads), "--tokens", Invariant(tokens), "--reads", "1000"]);
    }

    /// <summary>LangGraph.js PostgresSaver on <paramref name="postgres"/>'s server, in a fresh database: the same workload.</summary>
    public static async Task<DurableRun> PostgresSaverAsync(PostgresPeer postgres, int threads, int tokens)
    {
        var url = await postgres.CreateDatabaseAsync("bench_peer");
        try
        {
            return await PeerAsync(["postgres", "--url", url, "--threads", Invariant(threads), "--tokens", Invariant(tokens), "--reads", "1000"]);
        }
        finally
        {
            await postgres.DropDatabaseAsync(url);
        }
    }

    private static async Task<DurableRun> PeerAsync(string[] arguments)
    {
        var load = LoadAverage();
        var (code, output, error) = await RunAsync("node", [Path.Combine(Root, "bench", "peers", "peer.mjs"), .. arguments], TimeSpan.FromMinutes(10));
        if (code != 0)
        {
            throw new InvalidOperationException($"the peer failed ({code}): {error}");
        }

        using var json = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        var root = json.RootElement;
        return new DurableRun(
            root.GetProperty("peer").GetString() ?? "?",
            root.GetProperty("synchronous").GetString() ?? "?",
            root.GetProperty("tokens").GetInt64(),
            root.GetProperty("textBytes").GetInt64(),
            root.GetProperty("tokensPerSecond").GetDouble(),
            root.GetProperty("getTupleP50Ms").GetDouble(),
            root.GetProperty("getTupleP99Ms").GetDouble(),
            root.GetProperty("bytesOnDisk").ValueKind == JsonValueKind.Number ? root.GetProperty("bytesOnDisk").GetInt64() : 0,
            load);
    }

    /// <summary>
    /// Holdfast with the same workload: <paramref name="threads"/> sessions streaming <paramref name="tokens"/> tokens
    /// each from an unthrottled backend, timed from the first create until every chunk is committed; then reads of a
    /// session with its whole output, and the file's size.
    /// </summary>
    public static async Task<DurableRun> HoldfastAsync(string synchronous, int threads, int tokens, PostgresPeer? postgres = null)
    {
        using var directory = new ScratchDirectory("durable");
        var url = postgres is null ? null : await postgres.CreateDatabaseAsync("bench_holdfast");
        try
        {
            return await HoldfastAsync(directory.Path, synchronous, threads, tokens, url);
        }
        finally
        {
            if (url is not null)
            {
                await postgres!.DropDatabaseAsync(url);
            }
        }
    }

    private static async Task<DurableRun> HoldfastAsync(string directory, string synchronous, int threads, int tokens, string? postgresUrl)
    {
        var load = LoadAverage();
        var settings = new Dictionary<string, string?>
        {
            ["Storage:SqliteSynchronous"] = synchronous,
            ["Scripted:TokensPerSecond"] = "0",
            ["Scripted:MaxTokens"] = Invariant(tokens),
            ["Scripted:MaxConcurrency"] = Invariant(threads),
        };
        if (postgresUrl is not null)
        {
            settings["Storage:ConnectionString"] = postgresUrl;
        }

        var host = await BenchHost.StartAsync(directory, settings);
        long textBytes;
        double rate;
        double createdMs = 0;
        long commits;
        List<double> reads = [];
        await using (host)
        {
            var watch = Stopwatch.StartNew();
            var created = 0;
            var ids = await Task.WhenAll(Enumerable.Range(0, threads).Select(i => Task.Run(async () =>
            {
                var (session, _) = await host.Sessions.CreateAsync(BenchHost.Request(i, tokens));
                if (Interlocked.Increment(ref created) == threads)
                {
                    createdMs = watch.Elapsed.TotalMilliseconds;
                }

                var end = await GenerationScenarios.FollowToEndAsync(host.Sessions, session.Id);
                return end.StatusChange?.Status == GenerationStatus.Completed ? session.Id : throw new InvalidOperationException($"{session.Id} did not complete");
            })));
            await host.Writer.FlushAsync();
            var elapsed = watch.Elapsed;
            rate = host.Writer.ChunksCommitted / elapsed.TotalSeconds;
            commits = host.Writer.Commits;

            textBytes = 0;
            foreach (var id in ids)
            {
                textBytes += System.Text.Encoding.UTF8.GetByteCount((await host.Sessions.GetAsync(id, null)).Output);
            }

            for (var i = 0; i < 1000; i++)
            {
                var id = ids[i * 37 % ids.Length];
                var read = Stopwatch.GetTimestamp();
                var session = await host.Sessions.GetAsync(id, null);
                reads.Add(Stopwatch.GetElapsedTime(read).TotalMilliseconds);
                if (session.Usage.OutputTokens != tokens)
                {
                    throw new InvalidOperationException($"{id}: {session.Usage.OutputTokens} tokens stored, {tokens} expected");
                }
            }
        }

        reads.Sort();
        var bytes = postgresUrl is null ? SqliteBytes(Path.Combine(directory, "holdfast.db")) : 0;
        return new DurableRun("Holdfast", postgresUrl is null ? synchronous : "synchronous_commit=on", (long)threads * tokens, textBytes, rate, Percentiles.Of(reads, 50), Percentiles.Of(reads, 99), bytes, load)
        {
            CreatedMs = createdMs,
            Commits = commits,
        };
    }

    /// <summary>
    /// <c>durable [--runs N] [--synchronous FULL|NORMAL] [--threads N] [--tokens N] [--pause-ms N] [--no-raw] [--postgres]</c>:
    /// Holdfast's side of the SQLite pair alone, N times, each followed by the raw limit, one line per run (for A/B runs
    /// of two builds back to back, and for attaching a profiler: <c>--pause-ms</c> waits before the first run). With
    /// <c>--postgres</c>, Holdfast's side of the PostgreSQL pair instead (the server of <c>HOLDFAST_TEST_POSTGRES</c>, or
    /// one <c>scripts/test-deps/postgres.sh</c> starts and stops; a fresh database per run; no raw limit).
    /// </summary>
    public static async Task<int> DurableCommandAsync(string[] arguments)
    {
        string Option(string name, string fallback)
        {
            var i = Array.IndexOf(arguments, "--" + name);
            return i >= 0 && i + 1 < arguments.Length ? arguments[i + 1] : fallback;
        }

        var runs = int.Parse(Option("runs", "5"), CultureInfo.InvariantCulture);
        var synchronous = Option("synchronous", "FULL");
        var threads = int.Parse(Option("threads", "100"), CultureInfo.InvariantCulture);
        var tokens = int.Parse(Option("tokens", "100"), CultureInfo.InvariantCulture);
        await using var postgres = arguments.Contains("--postgres") ? await PostgresPeer.StartAsync() : null;
        var server = postgres is null ? string.Empty : ", " + await postgres.SettingsAsync();
        await Console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"pid {Environment.ProcessId}{server}"));
        await Task.Delay(int.Parse(Option("pause-ms", "0"), CultureInfo.InvariantCulture));
        var warmUp = await HoldfastAsync(synchronous, threads, tokens, postgres);
        await Console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"warm-up: {warmUp.TokensPerSecond:0} tokens/s"));
        for (var run = 1; run <= runs; run++)
        {
            var holdfast = await HoldfastAsync(synchronous, threads, tokens, postgres);
            var raw = arguments.Contains("--no-raw") || postgres is not null ? double.NaN : await RawSqliteRowsPerSecondAsync(synchronous, 100_000);
            await Console.Out.WriteLineAsync(string.Create(
                CultureInfo.InvariantCulture,
                $"run {run}: {holdfast.TokensPerSecond:0} tokens/s ({holdfast.Tokens / holdfast.TokensPerSecond * 1000:0} ms: all created after {holdfast.CreatedMs:0} ms, {holdfast.Commits} group commits), {(double.IsNaN(raw) ? "" : $"raw {raw:0} rows/s ({100 * holdfast.TokensPerSecond / raw:0} %), ")}GetAsync p50 {holdfast.ReadP50Ms:0.000} ms p99 {holdfast.ReadP99Ms:0.000} ms, load {holdfast.LoadAverage}"));
        }

        return 0;
    }

    /// <summary>The disk's limit for this row shape: plain inserts of (session, seq, text) rows in 1,000-row transactions.</summary>
    public static async Task<double> RawSqliteRowsPerSecondAsync(string synchronous, int rows)
    {
        using var directory = new ScratchDirectory("raw");
        var path = Path.Combine(directory.Path, "raw.db");
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        await connection.OpenAsync();
        await using (var setup = connection.CreateCommand())
        {
            setup.CommandText = $"PRAGMA journal_mode=WAL; PRAGMA synchronous={(synchronous == "NORMAL" ? "NORMAL" : "FULL")}; " +
                "CREATE TABLE log (session_id TEXT NOT NULL, seq INTEGER NOT NULL, type INTEGER NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (session_id, seq)) WITHOUT ROWID;";
            await setup.ExecuteNonQueryAsync();
        }

        var watch = Stopwatch.StartNew();
        for (var start = 0; start < rows; start += 1000)
        {
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
            await using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO log (session_id, seq, type, payload) VALUES ($s, $q, 1, $t)";
            var session = insert.Parameters.Add("$s", SqliteType.Text);
            var seq = insert.Parameters.Add("$q", SqliteType.Integer);
            var text = insert.Parameters.Add("$t", SqliteType.Text);
            for (var i = start; i < Math.Min(rows, start + 1000); i++)
            {
                session.Value = $"gen_{i % 100:D4}";
                seq.Value = i / 100;
                text.Value = " harbour";
                await insert.ExecuteNonQueryAsync();
            }

            await transaction.CommitAsync();
        }

        return rows / watch.Elapsed.TotalSeconds;
    }

    /// <summary>The report's pause-to-stopped run as a scenario (<c>scenarios --only pause</c>): 1,000 running, 200 pauses.</summary>
    public static async Task<IEnumerable<Measurement>> PauseUntilStoppedAsync(ScenarioScale scale)
    {
        ArgumentNullException.ThrowIfNull(scale);
        var running = scale.Pick(1_000, 200);
        var pauses = scale.Pick(200, 50);
        var latencies = await PauseToStoppedAsync(running, pauses);
        return Percentiles.Describe(string.Create(CultureInfo.InvariantCulture, $"{running:#,0} running, {pauses} pauses one after another"), "pause until stopped (wait)", latencies, "ms");
    }

    /// <summary>
    /// Pause until stopped with <paramref name="running"/> sessions running (20 tokens/s each): <paramref name="pauses"/>
    /// of them, one after another, each waiting until its runner stopped (what <c>POST …/pause?wait=</c> does).
    /// </summary>
    public static async Task<List<double>> PauseToStoppedAsync(int running, int pauses)
    {
        using var directory = new ScratchDirectory("pause");
        await using var host = await BenchHost.StartAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "20",
            // 300 s of output each: enough for the run. The scripted backend plans its whole output up front, and
            // 100,000 planned tokens × 1,000 sessions made a 5 GB heap whose collections, not Holdfast, set the pause time.
            ["Scripted:MaxTokens"] = "6000",
            ["Scripted:MaxConcurrency"] = Invariant(running),
        });
        // Created 16 at a time: one after another took minutes on a loaded machine, long enough for the first sessions
        // to finish their planned output before the last one started.
        var ids = new string[running];
        await Parallel.ForEachAsync(Enumerable.Range(0, running), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, cancellationToken) =>
            ids[i] = (await host.Sessions.CreateAsync(BenchHost.Request(i), cancellationToken: cancellationToken)).Session.Id);

        await GenerationScenarios.WaitUntilAsync(() => Task.FromResult(host.Runner.RunningCount == running), TimeSpan.FromSeconds(150));
        await Task.Delay(TimeSpan.FromSeconds(1)); // every session streaming, not just claimed
        var latencies = new List<double>();
        using var meters = new HoldfastMeters();
        var commitsBefore = host.Writer.Commits;
        var chunksBefore = host.Writer.ChunksCommitted;
        var window = Stopwatch.StartNew();
        for (var i = 0; i < pauses; i++)
        {
            if (i % 10 == 0 && Environment.GetEnvironmentVariable("HOLDFAST_BENCH_TRACE") is "1")
            {
                var flushes = meters.Find("flush.duration");
                await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"    [{i}] queue {host.Writer.QueueLength}, running {host.Runner.RunningCount}, {(host.Writer.Commits - commitsBefore) / window.Elapsed.TotalSeconds:0.0} commits/s, {(host.Writer.ChunksCommitted - chunksBefore) / window.Elapsed.TotalSeconds:0} chunks/s, flush mean {(flushes.Count > 0 ? flushes.Average() : 0):0.0} max {(flushes.Count > 0 ? flushes.Max() : 0):0.0} ms, last p {(latencies.Count > 0 ? latencies[^1] : 0):0.0} ms, gc {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)} (load {LoadAverage()})"));
            }

            var id = ids[i * running / pauses];
            var started = Stopwatch.GetTimestamp();
            var paused = await host.Sessions.PauseAsync(id, Bench, wait: TimeSpan.FromSeconds(30));
            if (paused.Status != GenerationStatus.Paused)
            {
                // Not stopped within the wait: keep waiting, so the number says how long it really took.
                await GenerationScenarios.WaitUntilAsync(async () => (await host.Sessions.GetAsync(id, null)).Status == GenerationStatus.Paused, TimeSpan.FromMinutes(5));
            }

            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if ((i + 1) % 50 == 0)
            {
                await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"    {i + 1}/{pauses} paused, slowest so far {latencies.Max():0.0} ms (load {LoadAverage()})"));
            }
        }

        return latencies;
    }

    /// <summary>The load average (1, 5, 15 min) and the cores, as /proc/loadavg says.</summary>
    public static string LoadAverage()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return $"{parts[0]} {parts[1]} {parts[2]}";
        }
        catch (IOException)
        {
            return "n/a";
        }
    }

    /// <summary>The repository root (where Holdfast.slnx is), from the current directory or the program's.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, "Holdfast.slnx")))
                {
                    return directory.FullName;
                }
            }
        }

        throw new InvalidOperationException("Run the benchmarks inside the Holdfast repository (no Holdfast.slnx found above here).");
    }

    private static long SqliteBytes(string database)
    {
        // The host is stopped: fold the WAL into the file, as the peer does, and count what is left.
        using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false }.ToString()))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
            command.ExecuteNonQuery();
        }

        return new[] { database, database + "-wal" }.Where(File.Exists).Sum(f => new FileInfo(f).Length);
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    internal static async Task<(int Code, string Output, string Error)> RunAsync(string file, string[] arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException e)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} ran longer than {timeout}", e);
        }

        return (process.ExitCode, await output, await error);
    }
}
