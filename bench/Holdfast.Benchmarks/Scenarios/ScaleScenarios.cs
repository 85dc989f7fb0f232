using System.Diagnostics;
using System.Globalization;
using Holdfast.Client;
using Holdfast.Generation;
using Holdfast.Server;
using Microsoft.Data.Sqlite;
using ClientModels = Holdfast.Client.Models;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>What size costs: restore among many stored sessions, resident memory per session, the log after compaction.</summary>
internal static class ScaleScenarios
{
    /// <summary>
    /// Restore of 1,000 running sessions out of 100,000 stored. A first host runs 1,000 sessions and stops gracefully;
    /// then 98,999 finished sessions (clones of one real finished 3-token session, its log rows included) are written into the
    /// same file with plain SQL, in one transaction, while no host runs; then the real host starts and is timed until
    /// all 1,000 run again.
    /// </summary>
    public static async Task<IEnumerable<Measurement>> RestoreAsync(ScenarioScale scale)
    {
        var running = scale.Pick(1_000, 250);
        var stored = scale.Pick(100_000, 10_000);
        var name = $"restore of {running:#,0} running out of {stored:#,0} stored";
        using var directory = new ScratchDirectory("restore");
        var settings = new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "5",
            // 200 s of output at 5 tokens/s, enough for the run; the scripted backend plans it up front when a run
            // starts, a heap a streaming backend does not have (BENCHMARKS.md), so it plans no more than that.
            ["Scripted:MaxTokens"] = "1000",
            ["Scripted:MaxConcurrency"] = running.ToString(CultureInfo.InvariantCulture),
        };
        string template;
        await using (var first = await BenchHost.StartAsync(directory.Path, settings))
        {
            var (finished, _) = await first.Sessions.CreateAsync(BenchHost.Request(-1, maxTokens: 3));
            await GenerationScenarios.FollowToEndAsync(first.Sessions, finished.Id);
            template = finished.Id;
            await Parallel.ForEachAsync(Enumerable.Range(0, running), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, cancellationToken) =>
                await first.Sessions.CreateAsync(BenchHost.Request(i), cancellationToken: cancellationToken));
            await GenerationScenarios.WaitUntilAsync(() => Task.FromResult(first.Runner.RunningCount == running), TimeSpan.FromSeconds(120));
            await first.StopAsync();
        }

        var seed = Stopwatch.StartNew();
        var clones = stored - running - 1;
        await SeedFinishedSessionsAsync(Path.Combine(directory.Path, "holdfast.db"), template, clones);
        var seeded = seed.Elapsed;

        var gcPause = GC.GetTotalPauseDuration();
        var restart = Stopwatch.StartNew();
        await using var second = await BenchHost.StartAsync(directory.Path, settings);
        var recovered = restart.Elapsed;
        await GenerationScenarios.WaitUntilAsync(() => Task.FromResult(second.Runner.RunningCount == running), TimeSpan.FromSeconds(120));
        var allRunning = restart.Elapsed;
        var total = await CountSessionsAsync(Path.Combine(directory.Path, "holdfast.db"));
        if (total != stored)
        {
            throw new InvalidOperationException($"{total} sessions stored, {stored} expected");
        }

        return
        [
            new(name, $"{clones:#,0} finished sessions written with plain SQL (setup, not Holdfast)", seeded.TotalMilliseconds, "ms"),
            new(name, "start until recovery swept", recovered.TotalMilliseconds, "ms"),
            new(name, "start until all running again", allRunning.TotalMilliseconds, "ms"),
            new(name, "GC pauses in that window", (GC.GetTotalPauseDuration() - gcPause).TotalMilliseconds, "ms"),
        ];
    }

    /// <summary>Writes <paramref name="count"/> copies of a finished session's row and log rows under new ids (one transaction).</summary>
    private static async Task SeedFinishedSessionsAsync(string database, string template, int count)
    {
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false }.ToString());
        await connection.OpenAsync();
        var sessionColumns = await ColumnsAsync(connection, "generation_sessions");
        var logColumns = await ColumnsAsync(connection, "generation_log");
        string Select(IEnumerable<string> columns, string idColumn) => string.Join(", ", columns.Select(c =>
            c == idColumn ? "printf('gen_seed%08d', c.n)" : c == "idempotency_key" ? "NULL" : "t." + c));
        await using (var pragmas = connection.CreateCommand())
        {
            // Setup, not the measured path: no fsync, and a cache large enough that the insert does not spill.
            pragmas.CommandText = "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;";
            await pragmas.ExecuteNonQueryAsync();
        }

        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"""
            WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < $count)
            INSERT INTO generation_sessions ({string.Join(", ", sessionColumns)})
            SELECT {Select(sessionColumns, "id")} FROM generation_sessions t, c WHERE t.id = $template;
            WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < $count)
            INSERT INTO generation_log ({string.Join(", ", logColumns)})
            SELECT {Select(logColumns, "session_id")} FROM generation_log t, c WHERE t.session_id = $template;
            """;
        command.Parameters.AddWithValue("$count", count);
        command.Parameters.AddWithValue("$template", template);
        await command.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
        await using var checkpoint = connection.CreateCommand();
        checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
        await checkpoint.ExecuteNonQueryAsync();
    }

    private static async Task<List<string>> ColumnsAsync(SqliteConnection connection, string table)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT name FROM pragma_table_info('{table}') ORDER BY cid";
        await using var reader = await command.ExecuteReaderAsync();
        var columns = new List<string>();
        while (await reader.ReadAsync())
        {
            columns.Add(reader.GetString(0));
        }

        return columns;
    }

    private static async Task<long> CountSessionsAsync(string database)
    {
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ToString());
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM generation_sessions";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>
    /// Resident memory per running session of a real server process (this program's <c>serve-child</c>: the same
    /// <c>HoldfastServer</c> that <c>holdfast serve</c> runs, its own process and GC). The baseline is the same process
    /// idle after a warm-up (20 short sessions run to completion, so the code paths are compiled); then 1,000 sessions
    /// are created over the Unix socket and run at 1 token/s; RSS (<c>/proc/PID/status</c> VmRSS, median of 3 samples)
    /// with all running, minus the baseline, per session. The scripted backend plans its whole output when a run
    /// starts (300 tokens here), so that plan is part of the number.
    /// </summary>
    public static async Task<IEnumerable<Measurement>> ResidentMemoryAsync(ScenarioScale scale)
    {
        var running = scale.Pick(1_000, 250);
        const int PlannedTokens = 300;
        var name = $"resident memory of a server process, {running:#,0} running sessions";
        using var directory = new ScratchDirectory("rss");
        using var child = await ChildServer.StartAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "1",
            ["Scripted:MaxTokens"] = PlannedTokens.ToString(CultureInfo.InvariantCulture),
            ["Scripted:MaxConcurrency"] = (running + 50).ToString(CultureInfo.InvariantCulture),
        });
        using var client = HoldfastClient.ForUnixSocket(Path.Combine(directory.Path, "holdfast.sock"));
        var warmUp = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => client.CreateGenerationAsync(Create(i, maxTokens: 2))));
        await GenerationScenarios.WaitUntilAsync(
            async () => (await Task.WhenAll(warmUp.Select(g => client.GetGenerationAsync(g.Id)))).All(g => g.Status == ClientModels.GenerationStatus.Completed),
            TimeSpan.FromSeconds(60));
        await Task.Delay(TimeSpan.FromSeconds(2));
        var idle = await child.ResidentBytesAsync();

        await Parallel.ForEachAsync(Enumerable.Range(0, running), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, cancellationToken) =>
            await client.CreateGenerationAsync(Create(100 + i), cancellationToken: cancellationToken));
        await GenerationScenarios.WaitUntilAsync(async () => await CountRunningAsync(client) >= running, TimeSpan.FromSeconds(120));
        await Task.Delay(TimeSpan.FromSeconds(2));
        var busy = await child.ResidentBytesAsync();
        return
        [
            new(name, "resident memory idle after a warm-up (baseline)", idle / 1048576.0, "MiB"),
            new(name, $"resident memory with {running:#,0} running", busy / 1048576.0, "MiB"),
            new(name, $"resident memory per running session beyond the baseline (scripted backend's {PlannedTokens} planned tokens included)", (busy - idle) / 1024.0 / running, "KiB"),
        ];
    }

    private static ClientModels.CreateGenerationRequest Create(int i, int? maxTokens = null) => new(
        "scripted",
        [new ClientModels.InputMessage("user", $"Benchmark prompt number {i} about harbours and kelp")],
        Parameters: new ClientModels.GenerationParameters(Seed: i, MaxTokens: maxTokens));

    private static async Task<int> CountRunningAsync(HoldfastClient client)
    {
        var count = 0;
        string? cursor = null;
        do
        {
            var page = await client.ListGenerationsAsync(ClientModels.GenerationStatus.Running, limit: 100, cursor: cursor);
            count += page.Items.Count;
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return count;
    }

    /// <summary>
    /// The log of a finished session after compaction: one session streams 10,000 tokens, finishes, and
    /// <c>Generation:LogRetention</c> (0.5 s here) merges its chunk rows into one. Bytes are SQLite's own page count of
    /// the log table (a compact copy with and without the log rows) before and after compaction, against the output's
    /// UTF-8 bytes; the session row (which holds the materialised output too) is shown apart.
    /// </summary>
    public static async Task<IEnumerable<Measurement>> CompactedLogAsync(ScenarioScale scale)
    {
        var tokens = scale.Pick(10_000, 2_000);
        var name = $"log of a finished {tokens:#,0}-token session on disk";
        using var directory = new ScratchDirectory("compact");
        var database = Path.Combine(directory.Path, "holdfast.db");
        long textBytes;
        long before;
        await using (var host = await BenchHost.StartAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "0",
            ["Scripted:MaxTokens"] = tokens.ToString(CultureInfo.InvariantCulture),
            ["Generation:LogRetention"] = "00:00:00.500",
        }))
        {
            var (session, _) = await host.Sessions.CreateAsync(BenchHost.Request(7));
            await GenerationScenarios.FollowToEndAsync(host.Sessions, session.Id);
            await host.Writer.FlushAsync();
            var done = await host.Sessions.GetAsync(session.Id, null);
            textBytes = System.Text.Encoding.UTF8.GetByteCount(done.Output);
            before = await LogBytesAsync(database, directory.Path);
            await GenerationScenarios.WaitUntilAsync(async () => (await host.Sessions.GetAsync(session.Id, null)).LogCompacted, TimeSpan.FromSeconds(60));
            if ((await host.Sessions.GetAsync(session.Id, null)).Output != done.Output)
            {
                throw new InvalidOperationException("the output changed with the compaction");
            }
        }

        var after = await LogBytesAsync(database, directory.Path);
        var withRow = await LogBytesAsync(database, directory.Path, "DELETE FROM generation_log; DELETE FROM generation_sessions");
        return
        [
            new(name, "text (UTF-8)", textBytes / 1024.0, "KiB"),
            new(name, "log before compaction", before / 1024.0, "KiB"),
            new(name, "log after compaction and VACUUM", after / 1024.0, "KiB"),
            new(name, "log after compaction per byte of text", (double)after / textBytes, "x"),
            new(name, "log and session row (which holds the materialised output too) after compaction, per byte of text", (double)withRow / textBytes, "x"),
        ];
    }

    /// <summary>
    /// Bytes the generation log occupies on disk: a compact copy of the database (<c>VACUUM INTO</c>, consistent while a
    /// host writes) against the same copy with the log's rows deleted and vacuumed again.
    /// </summary>
    private static async Task<long> LogBytesAsync(string database, string scratch, string delete = "DELETE FROM generation_log")
    {
        var copy = await VacuumIntoAsync(database, Path.Combine(scratch, $"copy-{Guid.NewGuid():N}.db"));
        var with = new FileInfo(copy).Length;
        await using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = copy, Pooling = false }.ToString()))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = delete + "; VACUUM;";
            await command.ExecuteNonQueryAsync();
        }

        var without = new FileInfo(copy).Length;
        File.Delete(copy);
        return with - without;
    }

    private static async Task<string> VacuumIntoAsync(string database, string target)
    {
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false }.ToString());
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "VACUUM INTO $target";
        command.Parameters.AddWithValue("$target", target);
        await command.ExecuteNonQueryAsync();
        return target;
    }
}

/// <summary>
/// A Holdfast server in a child process: this program run as <c>serve-child DIR KEY=VALUE…</c> (the same
/// <see cref="HoldfastServer"/> <c>holdfast serve</c> runs). It prints <c>ready</c> once listening and stops when its
/// standard input closes.
/// </summary>
internal sealed class ChildServer : IDisposable
{
    private readonly Process _process;

    private ChildServer(Process process) => _process = process;

    public static async Task<ChildServer> StartAsync(string dataDirectory, IDictionary<string, string?> settings)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var start = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            start.ArgumentList.Add(typeof(ChildServer).Assembly.Location);
        }

        start.ArgumentList.Add("serve-child");
        start.ArgumentList.Add(dataDirectory);
        foreach (var (key, value) in settings)
        {
            start.ArgumentList.Add($"{key}={value}");
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the child server");
        var child = new ChildServer(process);
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        while (await process.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
        {
            if (line == "ready")
            {
                return child;
            }
        }

        child.Dispose();
        throw new InvalidOperationException("the child server ended before it was ready");
    }

    /// <summary>Median of three VmRSS samples, 0.5 s apart, in bytes.</summary>
    public async Task<long> ResidentBytesAsync()
    {
        var samples = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            var line = (await File.ReadAllLinesAsync($"/proc/{_process.Id}/status")).First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            samples.Add(long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024);
            await Task.Delay(500);
        }

        samples.Sort();
        return samples[1];
    }

    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    /// <summary>The child's side: serve until standard input closes.</summary>
    public static async Task<int> ServeAsync(string dataDirectory, IEnumerable<string> settings)
    {
        var all = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var setting in settings)
        {
            var pair = setting.Split('=', 2);
            all[pair[0]] = pair.Length == 2 ? pair[1] : null;
        }

        await using var app = await ServerScenarios.StartServerAsync(dataDirectory, all);
        Console.WriteLine("ready");
        while (await Console.In.ReadLineAsync() is not null)
        {
        }

        await app.StopAsync();
        return 0;
    }
}
