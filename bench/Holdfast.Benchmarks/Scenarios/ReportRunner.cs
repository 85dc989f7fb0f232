using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Npgsql;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>
/// <c>report</c>: the full run behind BENCHMARKS.md and README's performance table. Peers and Holdfast back to back,
/// pair by pair; the raw SQLite limit of the same disk; pause-to-stopped at 1,000 running; every scenario several
/// times. Writes the block between <c>&lt;!-- bench:begin --&gt;</c> and <c>&lt;!-- bench:end --&gt;</c> of both files
/// (nothing typed by hand), unless <c>--no-write</c>.
/// </summary>
internal static class ReportRunner
{
    /// <summary>Uncounted runs of Holdfast's side after the warm-up pair, so the counted ones run on settled JIT code.</summary>
    private const int HoldfastWarmUpRuns = 8;

    public const string Begin = "<!-- bench:begin -->";
    public const string End = "<!-- bench:end -->";

    /// <summary>The "Cluster (PostgreSQL, 3 nodes)" section of this run (empty with <c>--skip-cluster</c>).</summary>
    private static string ClusterSection { get; set; } = string.Empty;

    public static async Task<int> RunAsync(string[] args)
    {
        var pairs = IntOption(args, "--pairs", 3);
        var runs = IntOption(args, "--runs", 3);
        var scenarioRuns = IntOption(args, "--scenario-runs", runs);
        var threads = IntOption(args, "--threads", 100);
        var tokens = IntOption(args, "--tokens", 100);
        var write = !args.Contains("--no-write", StringComparer.Ordinal);
        var skipScenarios = args.Contains("--skip-scenarios", StringComparer.Ordinal);
        var skipPostgres = args.Contains("--skip-postgres", StringComparer.Ordinal);
        var data = new ReportData(DateTime.UtcNow, PeerScenarios.LoadAverage(), threads, tokens);
        var clock = Stopwatch.StartNew();

        await Log("installing the peers (bench/peers/setup.sh) …");
        await PeerScenarios.SetupAsync();
        if (args.Contains("--only-postgres", StringComparer.Ordinal))
        {
            // The PostgreSQL pairs alone, printed and never written: the block needs the SQLite pairs (for A/B runs).
            await RunPostgresPairsAsync(data, pairs);
            var section = new StringBuilder();
            RenderPostgres(section, data);
            Console.Write(section.ToString());
            await Log($"PostgreSQL pairs done in {clock.Elapsed.TotalMinutes:0.0} min (load {PeerScenarios.LoadAverage()})");
            return 0;
        }

        // A warm-up pair first, listed but not counted: the first Holdfast run of this process pays the JIT of the whole
        // stack (and the first peer run node's module loading and a cold page cache), which is not what either side
        // does in a steady state.
        await Log("warm-up pair (not counted): SqliteSaver FULL, Holdfast FULL …");
        data.WarmUp = (await PeerScenarios.SqliteSaverAsync("FULL", threads, tokens), await PeerScenarios.HoldfastAsync("FULL", threads, tokens));
        await Log($"  warm-up ratio {data.WarmUp.Value.Holdfast.TokensPerSecond / data.WarmUp.Value.Peer.TokensPerSecond:0.0}x (load {PeerScenarios.LoadAverage()})");

        // Holdfast's side runs in this one long-lived process, as a server does; .NET's tiered JIT keeps optimising its
        // hot paths over the first runs (about ten of them: 16k to 41k tokens/s in one profiled loop). A few more
        // uncounted runs let the counted ones measure the steady state. The peer is a fresh node process per run, bound
        // by its fsync per put, not by its JIT.
        for (var i = 0; i < HoldfastWarmUpRuns; i++)
        {
            data.HoldfastWarmUps.Add((await PeerScenarios.HoldfastAsync("FULL", threads, tokens)).TokensPerSecond);
        }

        await Log($"  Holdfast warm-up runs (not counted): {string.Join(", ", data.HoldfastWarmUps.Select(t => t.ToString("#,0", CultureInfo.InvariantCulture)))} tokens/s");

        // Pairs: the peer, then Holdfast, back to back, at FULL and at NORMAL; the raw limit in the same pair.
        for (var pair = 1; pair <= pairs; pair++)
        {
            await Log($"pair {pair}/{pairs}: SqliteSaver FULL, Holdfast FULL, raw SQLite, SqliteSaver NORMAL, Holdfast NORMAL …");
            data.PeerFull.Add(await PeerScenarios.SqliteSaverAsync("FULL", threads, tokens));
            data.HoldfastFull.Add(await PeerScenarios.HoldfastAsync("FULL", threads, tokens));
            data.Raw.Add((await PeerScenarios.RawSqliteRowsPerSecondAsync("FULL", 100_000), PeerScenarios.LoadAverage()));
            data.PeerNormal.Add(await PeerScenarios.SqliteSaverAsync("NORMAL", threads, tokens));
            data.HoldfastNormal.Add(await PeerScenarios.HoldfastAsync("NORMAL", threads, tokens));
            await Log($"  ratio FULL {data.HoldfastFull[^1].TokensPerSecond / data.PeerFull[^1].TokensPerSecond:0.0}x, NORMAL {data.HoldfastNormal[^1].TokensPerSecond / data.PeerNormal[^1].TokensPerSecond:0.0}x (load {PeerScenarios.LoadAverage()})");
        }

        if (!skipPostgres)
        {
            try
            {
                await RunPostgresPairsAsync(data, pairs);
            }
            catch (Exception e) when (e is InvalidOperationException or NpgsqlException or IOException or TimeoutException or System.ComponentModel.Win32Exception)
            {
                // Reported in the block rather than ending the whole report: the SQLite numbers still stand.
                data.PostgresFailure = e.Message;
                await Log($"PostgreSQL pairs failed: {e.Message}");
            }
        }

        for (var run = 1; run <= runs; run++)
        {
            await Log($"pause-to-stopped at 1,000 running, run {run}/{runs} …");
            var load = PeerScenarios.LoadAverage();
            var latencies = (await PeerScenarios.PauseToStoppedAsync(1_000, 200)).Order().ToList();
            data.Pauses.Add((Percentiles.Of(latencies, 50), Percentiles.Of(latencies, 99), load));
            await Log($"  p50 {data.Pauses[^1].P50:0.0} ms, p99 {data.Pauses[^1].P99:0.0} ms (load {load})");
        }

        // Three nodes on one PostgreSQL (HOLDFAST_TEST_POSTGRES, or a server scripts/test-deps/postgres.sh starts).
        var cluster = new List<ClusterScenarios.ClusterRun>();
        string? clusterError = null;
        if (!args.Contains("--skip-cluster", StringComparer.Ordinal))
        {
            try
            {
                cluster = await ClusterScenarios.RunManyAsync(IntOption(args, "--cluster-runs", runs));
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException or Npgsql.NpgsqlException or IOException or System.ComponentModel.Win32Exception)
            {
                clusterError = e.Message;
                await Log($"cluster: not measured ({e.Message})");
            }
        }

        ClusterSection = cluster.Count > 0 ? ClusterScenarios.Table(cluster) : clusterError is null ? string.Empty : $"### Cluster (PostgreSQL, 3 nodes)\n\nNot measured in this run: {clusterError}\n\n";

        if (!skipScenarios)
        {
            for (var run = 1; run <= scenarioRuns; run++)
            {
                await Log($"scenarios, run {run}/{scenarioRuns} …");
                data.ScenarioRuns.Add(await ScenarioRunner.RunAllAsync(new ScenarioScale(Quick: false), only: null));
                if (write && run < scenarioRuns)
                {
                    // Written after every run, so a run cut short still leaves the blocks of the runs it finished.
                    data.Elapsed = clock.Elapsed;
                    await WriteAsync(data, print: false);
                }
            }
        }

        data.Elapsed = clock.Elapsed;
        await WriteAsync(data, print: true, write);
        await Log($"report done in {clock.Elapsed.TotalMinutes:0.0} min");
        return 0;
    }

    private static async Task RunPostgresPairsAsync(ReportData data, int pairs)
    {
        await Log("PostgreSQL: starting a local server (scripts/test-deps/postgres.sh) …");
        await using var postgres = await PostgresPeer.StartAsync();
        data.PostgresSettings = await postgres.SettingsAsync();
        await Log($"  {data.PostgresSettings}; warm-up pair (not counted) …");
        data.PostgresWarmUp = (await PeerScenarios.PostgresSaverAsync(postgres, data.Threads, data.Tokens), await PeerScenarios.HoldfastAsync("FULL", data.Threads, data.Tokens, postgres));
        for (var pair = 1; pair <= pairs; pair++)
        {
            await Log($"PostgreSQL pair {pair}/{pairs}: PostgresSaver, Holdfast …");
            data.PeerPostgres.Add(await PeerScenarios.PostgresSaverAsync(postgres, data.Threads, data.Tokens));
            data.HoldfastPostgres.Add(await PeerScenarios.HoldfastAsync("FULL", data.Threads, data.Tokens, postgres));
            await Log($"  ratio {data.HoldfastPostgres[^1].TokensPerSecond / data.PeerPostgres[^1].TokensPerSecond:0.0}x (load {PeerScenarios.LoadAverage()})");
        }
    }

    private static async Task WriteAsync(ReportData data, bool print, bool write = true)
    {
        var block = Render(data, PeerScenarios.LoadAverage());
        if (print)
        {
            Console.Write(block);
        }

        if (write)
        {
            await RewriteBlockAsync(Path.Combine(PeerScenarios.Root, "BENCHMARKS.md"), block);
            await RewriteBlockAsync(Path.Combine(PeerScenarios.Root, "README.md"), ReadmeBlock(data));
            await Log($"wrote BENCHMARKS.md and README.md (between the bench markers; {data.ScenarioRuns.Count} scenario runs)");
        }
    }

    /// <summary>Replaces what lies between the markers of <paramref name="file"/> with <paramref name="block"/>.</summary>
    public static async Task RewriteBlockAsync(string file, string block)
    {
        var text = await File.ReadAllTextAsync(file);
        var begin = text.IndexOf(Begin, StringComparison.Ordinal);
        var end = text.IndexOf(End, StringComparison.Ordinal);
        if (begin < 0 || end < begin)
        {
            throw new InvalidOperationException($"{file} has no {Begin} … {End} block to rewrite");
        }

        await File.WriteAllTextAsync(file, string.Concat(text.AsSpan(0, begin + Begin.Length), "\n", block, text.AsSpan(end)));
    }

    private static string Render(ReportData d, string loadAtEnd)
    {
        var s = new StringBuilder();
        var ratiosFull = Ratios(d.HoldfastFull, d.PeerFull);
        var pauseP99 = Median(d.Pauses.Select(p => p.P99));
        s.AppendLine(Inv($"Written by `bench/Holdfast.Benchmarks report` on {d.Started:yyyy-MM-dd HH:mm} UTC in {d.Elapsed.TotalMinutes:0.0} min: {Environment.ProcessorCount} cores ({Cpu()}), {RuntimeInformation.OSDescription}, .NET {Environment.Version}, Node {NodeVersion()}, temp folder on {Filesystem()}. Load average (1/5/15 min) {d.LoadAtStart} at the start, {loadAtEnd} at the end: the machine is shared, so absolute numbers move between runs; the ratios come from pairs run back to back."));
        s.AppendLine();
        s.AppendLine("### Acceptance lines (SQLite)");
        s.AppendLine();
        s.AppendLine(Inv($"durable tokens/s ratio vs LangGraph.js SqliteSaver (FULL): {Median(ratiosFull):0.0}x"));
        s.AppendLine();
        s.AppendLine(Inv($"pause-to-stopped p99 at 1000 running: {pauseP99:0.0} ms"));
        s.AppendLine();
        s.AppendLine(Inv($"(median of {ratiosFull.Count} pairs after an uncounted warm-up pair, ratios {Spread(ratiosFull, "0.0")}x; median of {d.Pauses.Count} runs of 200 pauses, p99s {Spread(d.Pauses.Select(p => p.P99), "0.0")} ms. Targets: ≥ 20x and ≤ 20 ms; {(Median(ratiosFull) >= 20 ? "the ratio meets it" : "the ratio falls short")}, {(pauseP99 <= 20 ? "the pause meets it" : "the pause falls short")}.)"));
        s.AppendLine();
        if (d.PeerFull.Count > 0)
        {
            RenderPeers(s, d, ratiosFull);
        }

        if (d.PeerPostgres.Count > 0)
        {
            RenderPostgres(s, d);
        }
        else if (d.PostgresFailure is { } failure)
        {
            s.AppendLine("### Against peers on PostgreSQL");
            s.AppendLine();
            s.AppendLine(Inv($"Not measured in this run: {failure}"));
            s.AppendLine();
        }

        s.AppendLine("### Pause until stopped, 1,000 sessions running");
        s.AppendLine();
        s.AppendLine("1,000 sessions stream at 20 tokens/s each (20,000 chunks/s offered to the group commit); 200 of them are paused one after another through the core (`PauseAsync` with a wait, what `POST …/pause?wait=` runs), each timed from the request until its runner stopped and the pause was durable.");
        s.AppendLine();
        s.AppendLine("| run | p50 | p99 | load average before the run |");
        s.AppendLine("|---:|---:|---:|---|");
        for (var i = 0; i < d.Pauses.Count; i++)
        {
            s.AppendLine(Inv($"| {i + 1} | {d.Pauses[i].P50:0.0} ms | {d.Pauses[i].P99:0.0} ms | {d.Pauses[i].Load} |"));
        }

        s.AppendLine();
        s.Append(ClusterSection);
        if (d.ScenarioRuns.Count > 0)
        {
            s.AppendLine(Inv($"### Scenarios ({d.ScenarioRuns.Count} runs each: median and the range over the runs)"));
            s.AppendLine();
            s.AppendLine(Targets(d.ScenarioRuns));
            s.AppendLine();
            s.Append(ScenarioTable(d.ScenarioRuns));
            s.AppendLine();
        }

        return s.ToString();
    }

    private static void RenderPeers(StringBuilder s, ReportData d, List<double> ratiosFull)
    {
        var ratiosNormal = Ratios(d.HoldfastNormal, d.PeerNormal);
        var rawMedian = Median(d.Raw.Select(r => r.Rows));
        s.AppendLine("### Against peers: durable streamed tokens");
        s.AppendLine();
        s.AppendLine(Inv($"{d.Threads} threads (LangGraph `thread_id`s, Holdfast sessions) stream {d.Tokens} tokens each at once, {d.Threads * d.Tokens:#,0} tokens in all; every token is durable before it counts: the peer does one `put` of the thread's state per token, Holdfast streams from its unthrottled scripted backend and counts chunks committed by its group commit (timed from the first create to the last commit). Both on SQLite in WAL mode in the same temp folder, pair by pair, the peer first. The warm-up pair runs first and is not counted (the harness's first Holdfast run compiles the whole stack; node loads its modules), then {HoldfastWarmUpRuns} more uncounted Holdfast runs (Holdfast runs in one long-lived process, as a server does, and .NET's tiered JIT keeps optimising its hot paths over the first runs; each peer run is a fresh node process bound by its fsync per put), and every counted pair is listed."));
        s.AppendLine();
        s.AppendLine("| pair | synchronous | SqliteSaver tokens/s | Holdfast tokens/s | ratio | load average before the pair |");
        s.AppendLine("|---:|---|---:|---:|---:|---|");
        if (d.WarmUp is { } warm)
        {
            s.AppendLine(Inv($"| warm-up (not counted) | FULL (peer set to FULL) | {warm.Peer.TokensPerSecond:#,0} | {warm.Holdfast.TokensPerSecond:#,0} | {warm.Holdfast.TokensPerSecond / warm.Peer.TokensPerSecond:0.0}x | {warm.Peer.LoadAverage} |"));
        }

        if (d.HoldfastWarmUps.Count > 0)
        {
            s.AppendLine(Inv($"| Holdfast warm-up runs (not counted) | FULL | | {string.Join(", ", d.HoldfastWarmUps.Select(t => t.ToString("#,0", CultureInfo.InvariantCulture)))} | | |"));
        }

        for (var i = 0; i < d.PeerFull.Count; i++)
        {
            s.AppendLine(Inv($"| {i + 1} | FULL (peer set to FULL) | {d.PeerFull[i].TokensPerSecond:#,0} | {d.HoldfastFull[i].TokensPerSecond:#,0} | {ratiosFull[i]:0.0}x | {d.PeerFull[i].LoadAverage} |"));
        }

        for (var i = 0; i < d.PeerNormal.Count; i++)
        {
            s.AppendLine(Inv($"| {i + 1} | NORMAL (peer set to NORMAL) | {d.PeerNormal[i].TokensPerSecond:#,0} | {d.HoldfastNormal[i].TokensPerSecond:#,0} | {ratiosNormal[i]:0.0}x | {d.PeerNormal[i].LoadAverage} |"));
        }

        s.AppendLine();
        s.AppendLine(Inv($"Median ratio at FULL {Median(ratiosFull):0.0}x (spread {Spread(ratiosFull, "0.0")}), at NORMAL {Median(ratiosNormal):0.0}x (spread {Spread(ratiosNormal, "0.0")})."));
        s.AppendLine();
        s.AppendLine("| measure | LangGraph.js SqliteSaver | Holdfast | target |");
        s.AppendLine("|---|---:|---:|---|");
        s.AppendLine(Inv($"| durable tokens/s at FULL, median (spread) | {Median(d.PeerFull.Select(r => r.TokensPerSecond)):#,0} ({Spread(d.PeerFull.Select(r => r.TokensPerSecond), "#,0")}) | {Median(d.HoldfastFull.Select(r => r.TokensPerSecond)):#,0} ({Spread(d.HoldfastFull.Select(r => r.TokensPerSecond), "#,0")}) | ≥ 20x |"));
        s.AppendLine(Inv($"| raw SQLite limit on this disk: 1,000-row transactions of log rows at FULL, median (spread) | | {rawMedian:#,0} rows/s ({Spread(d.Raw.Select(r => r.Rows), "#,0")}); Holdfast reaches {Median(d.HoldfastFull.Select(r => r.TokensPerSecond)) / rawMedian:P0} | ≥ 50 % |"));
        s.AppendLine(Inv($"| read the latest state with its whole text ({d.Tokens} tokens), p50 / p99 | `getTuple` {Median(d.PeerFull.Select(r => r.ReadP50Ms)):0.000} / {Median(d.PeerFull.Select(r => r.ReadP99Ms)):0.00} ms | `GetAsync` {Median(d.HoldfastFull.Select(r => r.ReadP50Ms)):0.000} / {Median(d.HoldfastFull.Select(r => r.ReadP99Ms)):0.00} ms | p50 ≤ the peer's |"));
        s.AppendLine(Inv($"| bytes on disk after the run (WAL folded in) for {d.PeerFull[0].TextBytes:#,0} / {d.HoldfastFull[0].TextBytes:#,0} bytes of text | {Median(d.PeerFull.Select(r => (double)r.BytesOnDisk)):#,0} ({Median(d.PeerFull.Select(r => (double)r.BytesOnDisk / r.TextBytes)):0.0} per text byte) | {Median(d.HoldfastFull.Select(r => (double)r.BytesOnDisk)):#,0} ({Median(d.HoldfastFull.Select(r => (double)r.BytesOnDisk / r.TextBytes)):0.0} per text byte) | ≤ 1/5 of the peer's |"));
        s.AppendLine();
    }

    private static void RenderPostgres(StringBuilder s, ReportData d)
    {
        var ratios = Ratios(d.HoldfastPostgres, d.PeerPostgres);
        s.AppendLine("### Against peers on PostgreSQL");
        s.AppendLine();
        s.AppendLine(Inv($"The same workload ({d.Threads} × {d.Tokens} tokens, one durable write per token on the peer's side) against LangGraph.js `PostgresSaver` and Holdfast on a local server started like the tests' (`scripts/test-deps/postgres.sh`: {d.PostgresSettings}; loopback TCP), a fresh database for each side of each pair, the peer first; a warm-up pair first, not counted."));
        s.AppendLine();
        s.AppendLine(Inv($"durable tokens/s ratio vs LangGraph.js PostgresSaver (synchronous_commit=on): {Median(ratios):0.0}x"));
        s.AppendLine();
        s.AppendLine("| pair | PostgresSaver tokens/s | Holdfast tokens/s | ratio | `getTuple` / `GetAsync` p50 | load average before the pair |");
        s.AppendLine("|---:|---:|---:|---:|---|---|");
        if (d.PostgresWarmUp is { } warm)
        {
            s.AppendLine(Inv($"| warm-up (not counted) | {warm.Peer.TokensPerSecond:#,0} | {warm.Holdfast.TokensPerSecond:#,0} | {warm.Holdfast.TokensPerSecond / warm.Peer.TokensPerSecond:0.0}x | {warm.Peer.ReadP50Ms:0.000} / {warm.Holdfast.ReadP50Ms:0.000} ms | {warm.Peer.LoadAverage} |"));
        }

        for (var i = 0; i < d.PeerPostgres.Count; i++)
        {
            s.AppendLine(Inv($"| {i + 1} | {d.PeerPostgres[i].TokensPerSecond:#,0} | {d.HoldfastPostgres[i].TokensPerSecond:#,0} | {ratios[i]:0.0}x | {d.PeerPostgres[i].ReadP50Ms:0.000} / {d.HoldfastPostgres[i].ReadP50Ms:0.000} ms | {d.PeerPostgres[i].LoadAverage} |"));
        }

        s.AppendLine();
        var holdfast = Median(d.HoldfastPostgres.Select(r => r.TokensPerSecond));
        s.AppendLine(Inv($"Median ratio {Median(ratios):0.0}x (spread {Spread(ratios, "0.0")}). Holdfast's durable chunks/s on PostgreSQL in this workload: median {holdfast:#,0} (spread {Spread(d.HoldfastPostgres.Select(r => r.TokensPerSecond), "#,0")}); target ≥ 50,000, {(holdfast >= 50_000 ? "met" : "not met")}."));
        s.AppendLine();
    }

    /// <summary>The issue's targets for the scenario measurements, each against its median over the runs.</summary>
    private static string Targets(List<List<Measurement>> runs)
    {
        var s = new StringBuilder();
        s.AppendLine("| target | median | every run | met |");
        s.AppendLine("|---|---:|---|---|");
        void Line(string target, string scenarioStart, string metricStart, double limit, bool everyRun = false)
        {
            var values = runs.SelectMany(r => r).Where(m => m.Scenario.StartsWith(scenarioStart, StringComparison.Ordinal) && m.Metric.StartsWith(metricStart, StringComparison.Ordinal)).ToList();
            if (values.Count == 0)
            {
                return;
            }

            var median = values[0] with { Value = Median(values.Select(v => v.Value)) };
            var met = everyRun ? values.All(v => v.Value <= limit) : median.Value <= limit;
            s.AppendLine(Inv($"| {target} | {median.FormattedValue} {values[0].Unit} | {string.Join(", ", values.Select(v => v.FormattedValue))} | {(met ? "yes" : "no")} |"));
        }

        void AtLeast(string target, string scenarioStart, string metricStart, double limit)
        {
            var values = runs.SelectMany(r => r).Where(m => m.Scenario.StartsWith(scenarioStart, StringComparison.Ordinal) && m.Metric.StartsWith(metricStart, StringComparison.Ordinal)).ToList();
            if (values.Count == 0)
            {
                return;
            }

            var median = values[0] with { Value = Median(values.Select(v => v.Value)) };
            s.AppendLine(Inv($"| {target} | {median.FormattedValue} {values[0].Unit} | {string.Join(", ", values.Select(v => v.FormattedValue))} | {(median.Value >= limit ? "yes" : "no")} |"));
        }

        Line("late reader of a 10k-token backlog: first byte ≤ 10 ms (p99 over the readers)", "late reader", "request until the first byte p99", 10);
        AtLeast("late reader: ≥ 7,000 chunks/s (slowest reader)", "late reader", "chunks/s, whole backlog (slowest", 7_000);
        Line("fan-out: 100 readers add ≤ 10 ms p99 over 1 reader", "fan-out", "p99 added", 10);
        Line("restore of 1,000 running out of 100,000 stored ≤ 2 s, in every run", "restore", "start until all running again", 2_000, everyRun: true);
        Line("resident memory per running session beyond the baseline ≤ 50 KB (KiB here)", "resident memory", "resident memory per running session", 50);
        Line("log of a finished session after compaction ≤ 2× its text", "log of a finished", "log after compaction per byte of text", 2);
        return s.ToString();
    }

    private static string ReadmeBlock(ReportData d)
    {
        var s = new StringBuilder();
        var ratios = Ratios(d.HoldfastFull, d.PeerFull);
        s.AppendLine(Inv($"Written by `bench/Holdfast.Benchmarks report` on {d.Started:yyyy-MM-dd} ({Environment.ProcessorCount} cores, shared; details, peers and load in [BENCHMARKS.md](BENCHMARKS.md)): durable tokens/s {Median(ratios):0.0}x LangGraph.js SqliteSaver at `synchronous=FULL` (pairs {Spread(ratios, "0.0")}x){(d.PeerPostgres.Count > 0 ? Inv($", {Median(Ratios(d.HoldfastPostgres, d.PeerPostgres)):0.0}x PostgresSaver on PostgreSQL") : string.Empty)}, pause until stopped with 1,000 running p99 {Median(d.Pauses.Select(p => p.P99)):0.0} ms (runs {Spread(d.Pauses.Select(p => p.P99), "0.0")} ms)."));
        s.AppendLine();
        if (d.ScenarioRuns.Count > 0)
        {
            s.Append(ScenarioTable(d.ScenarioRuns));
            s.AppendLine();
        }

        return s.ToString();
    }

    private static List<double> Ratios(List<DurableRun> holdfast, List<DurableRun> peer) =>
        holdfast.Zip(peer, (h, p) => h.TokensPerSecond / p.TokensPerSecond).ToList();

    private static string ScenarioTable(List<List<Measurement>> runs)
    {
        var s = new StringBuilder();
        s.AppendLine("| scenario | measure | median | range | unit |");
        s.AppendLine("|---|---|---:|---|---|");
        foreach (var group in runs.SelectMany(r => r).GroupBy(m => (m.Scenario, m.Metric)))
        {
            var values = group.Select(m => m.Value).ToList();
            var first = group.First();
            var median = first with { Value = Median(values) };
            var range = values.Count > 1 ? $"{(first with { Value = values.Min() }).FormattedValue} – {(first with { Value = values.Max() }).FormattedValue}" : string.Empty;
            s.AppendLine(Inv($"| {first.Scenario} | {first.Metric} | {median.FormattedValue} | {range} | {first.Unit} |"));
        }

        return s.ToString();
    }

    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string Spread(IEnumerable<double> values, string format)
    {
        var list = values.ToList();
        return list.Count == 0 ? "none" : $"{list.Min().ToString(format, CultureInfo.InvariantCulture)}–{list.Max().ToString(format, CultureInfo.InvariantCulture)}";
    }

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static int IntOption(string[] args, string name, int fallback)
    {
        var value = args.SkipWhile(a => !string.Equals(a, name, StringComparison.Ordinal)).Skip(1).FirstOrDefault();
        return value is null ? fallback : int.Parse(value, CultureInfo.InvariantCulture);
    }

    private static async Task Log(string line) => await Console.Error.WriteLineAsync($"[{DateTime.UtcNow:HH:mm:ss}] {line}");

    private static string Cpu()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    private static string Filesystem()
    {
        try
        {
            using var df = Process.Start(new ProcessStartInfo("df", ["-T", Path.GetTempPath()]) { RedirectStandardOutput = true, UseShellExecute = false });
            var lines = df!.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            df.WaitForExit();
            var fields = lines[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return $"{fields[1]} ({fields[0]})";
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or IndexOutOfRangeException)
        {
            return "an unknown file system";
        }
    }

    private static string NodeVersion()
    {
        try
        {
            using var node = Process.Start(new ProcessStartInfo("node", ["--version"]) { RedirectStandardOutput = true, UseShellExecute = false });
            var version = node!.StandardOutput.ReadToEnd().Trim();
            node.WaitForExit();
            return version;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "not found";
        }
    }
}

/// <summary>Everything one report run measured.</summary>
internal sealed class ReportData(DateTime started, string loadAtStart, int threads, int tokens)
{
    public DateTime Started { get; } = started;

    public string LoadAtStart { get; } = loadAtStart;

    public int Threads { get; } = threads;

    public int Tokens { get; } = tokens;

    public TimeSpan Elapsed { get; set; }

    public (DurableRun Peer, DurableRun Holdfast)? WarmUp { get; set; }

    public List<double> HoldfastWarmUps { get; } = [];

    public List<DurableRun> PeerFull { get; } = [];

    public List<DurableRun> HoldfastFull { get; } = [];

    public List<DurableRun> PeerNormal { get; } = [];

    public List<DurableRun> HoldfastNormal { get; } = [];

    public List<(double Rows, string Load)> Raw { get; } = [];

    public string? PostgresSettings { get; set; }

    public string? PostgresFailure { get; set; }

    public (DurableRun Peer, DurableRun Holdfast)? PostgresWarmUp { get; set; }

    public List<DurableRun> PeerPostgres { get; } = [];

    public List<DurableRun> HoldfastPostgres { get; } = [];

    public List<(double P50, double P99, string Load)> Pauses { get; } = [];

    public List<List<Measurement>> ScenarioRuns { get; } = [];
}
