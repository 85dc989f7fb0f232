using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>
/// <c>report</c>: the full run behind BENCHMARKS.md and README's performance table. Peers and Holdfast back to back,
/// pair by pair; the raw SQLite limit of the same disk; pause-to-stopped at 1,000 running; every scenario several
/// times. Writes the block between <c>&lt;!-- bench:begin --&gt;</c> and <c>&lt;!-- bench:end --&gt;</c> of both files
/// (nothing typed by hand), unless <c>--no-write</c>.
/// </summary>
internal static class ReportRunner
{
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
        var started = DateTime.UtcNow;
        var loadAtStart = PeerScenarios.LoadAverage();

        await Log("installing the peers (bench/peers/setup.sh) …");
        await PeerScenarios.SetupAsync();

        // Pairs: the peer, then Holdfast, back to back, at FULL and at NORMAL; the raw limit in the same pair.
        var peerFull = new List<DurableRun>();
        var holdfastFull = new List<DurableRun>();
        var peerNormal = new List<DurableRun>();
        var holdfastNormal = new List<DurableRun>();
        var raw = new List<(double Rows, string Load)>();
        for (var pair = 1; pair <= pairs; pair++)
        {
            await Log($"pair {pair}/{pairs}: SqliteSaver FULL, Holdfast FULL, raw SQLite, SqliteSaver NORMAL, Holdfast NORMAL …");
            peerFull.Add(await PeerScenarios.SqliteSaverAsync("FULL", threads, tokens));
            holdfastFull.Add(await PeerScenarios.HoldfastAsync("FULL", threads, tokens));
            raw.Add((await PeerScenarios.RawSqliteRowsPerSecondAsync("FULL", 100_000), PeerScenarios.LoadAverage()));
            peerNormal.Add(await PeerScenarios.SqliteSaverAsync("NORMAL", threads, tokens));
            holdfastNormal.Add(await PeerScenarios.HoldfastAsync("NORMAL", threads, tokens));
            await Log($"  ratio FULL {holdfastFull[^1].TokensPerSecond / peerFull[^1].TokensPerSecond:0.0}x, NORMAL {holdfastNormal[^1].TokensPerSecond / peerNormal[^1].TokensPerSecond:0.0}x (load {PeerScenarios.LoadAverage()})");
        }

        var pauses = new List<(double P50, double P99, string Load)>();
        for (var run = 1; run <= runs; run++)
        {
            await Log($"pause-to-stopped at 1,000 running, run {run}/{runs} …");
            var load = PeerScenarios.LoadAverage();
            var latencies = (await PeerScenarios.PauseToStoppedAsync(1_000, 200)).Order().ToList();
            pauses.Add((Percentiles.Of(latencies, 50), Percentiles.Of(latencies, 99), load));
            await Log($"  p50 {pauses[^1].P50:0.0} ms, p99 {pauses[^1].P99:0.0} ms (load {load})");
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

        var scenarioResults = new List<List<Measurement>>();
        if (!skipScenarios)
        {
            for (var run = 1; run <= scenarioRuns; run++)
            {
                await Log($"scenarios, run {run}/{scenarioRuns} …");
                scenarioResults.Add(await ScenarioRunner.RunAllAsync(new ScenarioScale(Quick: false), only: null));
                if (write && run < scenarioRuns)
                {
                    // Written after every run, so a run cut short still leaves the blocks of the runs it finished.
                    await WriteAsync(started, loadAtStart, threads, tokens, peerFull, holdfastFull, peerNormal, holdfastNormal, raw, pauses, scenarioResults, print: false);
                }
            }
        }

        await WriteAsync(started, loadAtStart, threads, tokens, peerFull, holdfastFull, peerNormal, holdfastNormal, raw, pauses, scenarioResults, print: true, write);
        return 0;
    }

    private static async Task WriteAsync(
        DateTime started,
        string loadAtStart,
        int threads,
        int tokens,
        List<DurableRun> peerFull,
        List<DurableRun> holdfastFull,
        List<DurableRun> peerNormal,
        List<DurableRun> holdfastNormal,
        List<(double Rows, string Load)> raw,
        List<(double P50, double P99, string Load)> pauses,
        List<List<Measurement>> scenarioResults,
        bool print,
        bool write = true)
    {
        var block = Render(started, loadAtStart, PeerScenarios.LoadAverage(), threads, tokens, peerFull, holdfastFull, peerNormal, holdfastNormal, raw, pauses, scenarioResults);
        if (print)
        {
            Console.Write(block);
        }

        if (write)
        {
            await RewriteBlockAsync(Path.Combine(PeerScenarios.Root, "BENCHMARKS.md"), block);
            await RewriteBlockAsync(Path.Combine(PeerScenarios.Root, "README.md"), ReadmeBlock(started, holdfastFull, peerFull, pauses, scenarioResults));
            await Log($"wrote BENCHMARKS.md and README.md (between the bench markers; {scenarioResults.Count} scenario runs)");
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

    private static string Render(
        DateTime started,
        string loadAtStart,
        string loadAtEnd,
        int threads,
        int tokens,
        List<DurableRun> peerFull,
        List<DurableRun> holdfastFull,
        List<DurableRun> peerNormal,
        List<DurableRun> holdfastNormal,
        List<(double Rows, string Load)> raw,
        List<(double P50, double P99, string Load)> pauses,
        List<List<Measurement>> scenarioRuns)
    {
        var s = new StringBuilder();
        var ratiosFull = holdfastFull.Zip(peerFull, (h, p) => h.TokensPerSecond / p.TokensPerSecond).ToList();
        var ratiosNormal = holdfastNormal.Zip(peerNormal, (h, p) => h.TokensPerSecond / p.TokensPerSecond).ToList();
        var rawMedian = Median(raw.Select(r => r.Rows));
        var pauseP99 = Median(pauses.Select(p => p.P99));
        s.AppendLine(Inv($"Written by `bench/Holdfast.Benchmarks report` on {started:yyyy-MM-dd HH:mm} UTC: {Environment.ProcessorCount} cores ({Cpu()}), {RuntimeInformation.OSDescription}, .NET {Environment.Version}, Node {NodeVersion()}, temp folder on {Filesystem()}. Load average (1/5/15 min) {loadAtStart} at the start, {loadAtEnd} at the end: the machine is shared, so absolute numbers move between runs; the ratios come from pairs run back to back."));
        s.AppendLine();
        s.AppendLine("### Acceptance lines (SQLite)");
        s.AppendLine();
        s.AppendLine(Inv($"durable tokens/s ratio vs LangGraph.js SqliteSaver (FULL): {Median(ratiosFull):0.0}x"));
        s.AppendLine();
        s.AppendLine(Inv($"pause-to-stopped p99 at 1000 running: {pauseP99:0.0} ms"));
        s.AppendLine();
        s.AppendLine(Inv($"(median of {ratiosFull.Count} pairs, ratios {Spread(ratiosFull, "0.0")}x; median of {pauses.Count} runs of 200 pauses, p99s {Spread(pauses.Select(p => p.P99), "0.0")} ms. Targets: ≥ 20x and ≤ 20 ms; {(Median(ratiosFull) >= 20 ? "the ratio meets it" : "the ratio falls short")}, {(pauseP99 <= 20 ? "the pause meets it" : "the pause falls short")}.)"));
        s.AppendLine();
        if (peerFull.Count > 0)
        {
            RenderPeers(s, threads, tokens, peerFull, holdfastFull, peerNormal, holdfastNormal, raw, ratiosFull, ratiosNormal, rawMedian);
        }

        s.AppendLine("### Pause until stopped, 1,000 sessions running");
        s.AppendLine();
        s.AppendLine("1,000 sessions stream at 20 tokens/s each (20,000 chunks/s offered to the group commit); 200 of them are paused one after another through the core (`PauseAsync` with a wait, what `POST …/pause?wait=` runs), each timed from the request until its runner stopped and the pause was durable.");
        s.AppendLine();
        s.AppendLine("| run | p50 | p99 | load average before the run |");
        s.AppendLine("|---:|---:|---:|---|");
        for (var i = 0; i < pauses.Count; i++)
        {
            s.AppendLine(Inv($"| {i + 1} | {pauses[i].P50:0.0} ms | {pauses[i].P99:0.0} ms | {pauses[i].Load} |"));
        }

        s.AppendLine();
        s.Append(ClusterSection);
        if (scenarioRuns.Count > 0)
        {
            s.AppendLine(Inv($"### Scenarios ({scenarioRuns.Count} runs each: median and the range over the runs)"));
            s.AppendLine();
            s.Append(ScenarioTable(scenarioRuns));
            s.AppendLine();
        }

        return s.ToString();
    }

    private static void RenderPeers(
        StringBuilder s,
        int threads,
        int tokens,
        List<DurableRun> peerFull,
        List<DurableRun> holdfastFull,
        List<DurableRun> peerNormal,
        List<DurableRun> holdfastNormal,
        List<(double Rows, string Load)> raw,
        List<double> ratiosFull,
        List<double> ratiosNormal,
        double rawMedian)
    {
        s.AppendLine("### Against peers: durable streamed tokens");
        s.AppendLine();
        s.AppendLine(Inv($"{threads} threads (LangGraph `thread_id`s, Holdfast sessions) stream {tokens} tokens each at once, {threads * tokens:#,0} tokens in all; every token is durable before it counts: the peer does one `put` of the thread's state per token, Holdfast streams from its unthrottled scripted backend and counts chunks committed by its group commit (timed from the first create to the last commit). Both on SQLite in WAL mode in the same temp folder, pair by pair, the peer first."));
        s.AppendLine();
        s.AppendLine("| pair | synchronous | SqliteSaver tokens/s | Holdfast tokens/s | ratio | load average before the pair |");
        s.AppendLine("|---:|---|---:|---:|---:|---|");
        for (var i = 0; i < peerFull.Count; i++)
        {
            s.AppendLine(Inv($"| {i + 1} | FULL (peer set to FULL) | {peerFull[i].TokensPerSecond:#,0} | {holdfastFull[i].TokensPerSecond:#,0} | {ratiosFull[i]:0.0}x | {peerFull[i].LoadAverage} |"));
        }

        for (var i = 0; i < peerNormal.Count; i++)
        {
            s.AppendLine(Inv($"| {i + 1} | NORMAL (peer set to NORMAL) | {peerNormal[i].TokensPerSecond:#,0} | {holdfastNormal[i].TokensPerSecond:#,0} | {ratiosNormal[i]:0.0}x | {peerNormal[i].LoadAverage} |"));
        }

        s.AppendLine();
        s.AppendLine(Inv($"Median ratio at FULL {Median(ratiosFull):0.0}x (spread {Spread(ratiosFull, "0.0")}), at NORMAL {Median(ratiosNormal):0.0}x (spread {Spread(ratiosNormal, "0.0")})."));
        s.AppendLine();
        s.AppendLine("| measure | LangGraph.js SqliteSaver | Holdfast | target |");
        s.AppendLine("|---|---:|---:|---|");
        s.AppendLine(Inv($"| durable tokens/s at FULL, median (spread) | {Median(peerFull.Select(r => r.TokensPerSecond)):#,0} ({Spread(peerFull.Select(r => r.TokensPerSecond), "#,0")}) | {Median(holdfastFull.Select(r => r.TokensPerSecond)):#,0} ({Spread(holdfastFull.Select(r => r.TokensPerSecond), "#,0")}) | ≥ 20x |"));
        s.AppendLine(Inv($"| raw SQLite limit on this disk: 1,000-row transactions of log rows at FULL, median (spread) | | {rawMedian:#,0} rows/s ({Spread(raw.Select(r => r.Rows), "#,0")}); Holdfast reaches {Median(holdfastFull.Select(r => r.TokensPerSecond)) / rawMedian:P0} | ≥ 50 % |"));
        s.AppendLine(Inv($"| read the latest state with its whole text ({tokens} tokens), p50 / p99 | `getTuple` {Median(peerFull.Select(r => r.ReadP50Ms)):0.000} / {Median(peerFull.Select(r => r.ReadP99Ms)):0.00} ms | `GetAsync` {Median(holdfastFull.Select(r => r.ReadP50Ms)):0.000} / {Median(holdfastFull.Select(r => r.ReadP99Ms)):0.00} ms | p50 ≤ the peer's |"));
        s.AppendLine(Inv($"| bytes on disk after the run (WAL folded in) for {peerFull[0].TextBytes:#,0} / {holdfastFull[0].TextBytes:#,0} bytes of text | {Median(peerFull.Select(r => (double)r.BytesOnDisk)):#,0} ({Median(peerFull.Select(r => (double)r.BytesOnDisk / r.TextBytes)):0.0} per text byte) | {Median(holdfastFull.Select(r => (double)r.BytesOnDisk)):#,0} ({Median(holdfastFull.Select(r => (double)r.BytesOnDisk / r.TextBytes)):0.0} per text byte) | ≤ 1/5 of the peer's |"));
        s.AppendLine();
    }

    private static string ReadmeBlock(DateTime started, List<DurableRun> holdfastFull, List<DurableRun> peerFull, List<(double P50, double P99, string Load)> pauses, List<List<Measurement>> scenarioRuns)
    {
        var s = new StringBuilder();
        var ratios = holdfastFull.Zip(peerFull, (h, p) => h.TokensPerSecond / p.TokensPerSecond).ToList();
        s.AppendLine(Inv($"Written by `bench/Holdfast.Benchmarks report` on {started:yyyy-MM-dd} ({Environment.ProcessorCount} cores, shared; details, peers and load in [BENCHMARKS.md](BENCHMARKS.md)): durable tokens/s {Median(ratios):0.0}x LangGraph.js SqliteSaver at `synchronous=FULL` (pairs {Spread(ratios, "0.0")}x), pause until stopped with 1,000 running p99 {Median(pauses.Select(p => p.P99)):0.0} ms (runs {Spread(pauses.Select(p => p.P99), "0.0")} ms)."));
        s.AppendLine();
        if (scenarioRuns.Count > 0)
        {
            s.Append(ScenarioTable(scenarioRuns));
            s.AppendLine();
        }

        return s.ToString();
    }

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
