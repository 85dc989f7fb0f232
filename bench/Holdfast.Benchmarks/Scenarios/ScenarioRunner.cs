using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>Runs the scenarios one after another and prints their numbers as a Markdown table.</summary>
internal static class ScenarioRunner
{
    private static readonly (string Name, Func<ScenarioScale, Task<IEnumerable<Measurement>>> Run)[] Scenarios =
    [
        ("one-stream", GenerationScenarios.OneFastStreamAsync),
        ("many-fast", GenerationScenarios.ManyFastStreamsAsync),
        ("paced-250", scale => GenerationScenarios.ManyPacedStreamsAsync(scale, 250)),
        ("paced-1000", scale => GenerationScenarios.ManyPacedStreamsAsync(scale, 1_000)),
        ("control", GenerationScenarios.ControlLatencyAsync),
        ("read-latency", ReadLatencyScenario.ReadLatencyAsync),
        ("pause", PeerScenarios.PauseUntilStoppedAsync),
        ("memory", GenerationScenarios.MemoryPerSessionAsync),
        ("restart", GenerationScenarios.RestartAsync),
        ("restore", ScaleScenarios.RestoreAsync),
        ("resident-memory", ScaleScenarios.ResidentMemoryAsync),
        ("compacted-log", ScaleScenarios.CompactedLogAsync),
        ("late-reader", ReaderScenarios.LateReaderAsync),
        ("fan-out", ReaderScenarios.FanOutAsync),
        ("control-load", ServerScenarios.ControlUnderLoadAsync),
        ("first-token", ServerScenarios.FirstTokenAsync),
        ("bots", ServerScenarios.BotMessagesAsync),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        var quick = args.Contains("--quick", StringComparer.Ordinal);
        var only = args.SkipWhile(a => !string.Equals(a, "--only", StringComparison.Ordinal)).Skip(1).FirstOrDefault()?.Split(',');
        var output = args.SkipWhile(a => !string.Equals(a, "--output", StringComparison.Ordinal)).Skip(1).FirstOrDefault();
        var unknown = only?.Except(Scenarios.Select(s => s.Name), StringComparer.Ordinal).ToList();
        if (unknown is { Count: > 0 })
        {
            await Console.Error.WriteLineAsync($"holdfast-bench: unknown scenario {string.Join(", ", unknown)}; known: {string.Join(", ", Scenarios.Select(s => s.Name))}");
            return 2;
        }

        for (var i = 0; i < args.Length - 1; i++)
        {
            if (string.Equals(args[i], "--set", StringComparison.Ordinal))
            {
                var pair = args[i + 1].Split('=', 2);
                if (pair.Length != 2 || pair[0].Length == 0)
                {
                    await Console.Error.WriteLineAsync($"holdfast-bench: --set takes KEY=VALUE (e.g. Generation:FlushInterval=00:00:00.050); got '{args[i + 1]}'");
                    return 2;
                }

                BenchHost.Overrides[pair[0]] = pair[1];
            }
        }

        var scale = new ScenarioScale(quick);
        var table = new StringBuilder();
        table.AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, .NET {Environment.Version}{(quick ? ", --quick" : string.Empty)}{string.Concat(BenchHost.Overrides.Select(o => $", {o.Key}={Shown(o.Key, o.Value)}"))}.");
        table.AppendLine();
        table.AppendLine("| scenario | measure | value | unit |");
        table.AppendLine("|---|---|---:|---|");
        var failed = false;
        foreach (var (name, run) in Scenarios.Where(s => only is null || only.Contains(s.Name, StringComparer.Ordinal)))
        {
            await Console.Error.WriteLineAsync($"running {name} …");
            var watch = Stopwatch.StartNew();
            try
            {
                foreach (var m in await run(scale))
                {
                    table.AppendLine(CultureInfo.InvariantCulture, $"| {m.Scenario} | {m.Metric} | {m.FormattedValue} | {m.Unit} |");
                }

                await Console.Error.WriteLineAsync($"  done in {watch.Elapsed.TotalSeconds:0.0} s");
            }
            catch (Exception error)
            {
                failed = true;
                await Console.Error.WriteLineAsync($"holdfast-bench: {name} failed: {error}");
            }
        }

        var text = table.ToString();
        Console.Write(text);
        if (output is not null)
        {
            await File.WriteAllTextAsync(output, text);
        }

        return failed ? 1 : 0;
    }

    /// <summary>Runs the scenarios once (all, or those in <paramref name="only"/>) and returns their measurements.</summary>
    public static async Task<List<Measurement>> RunAllAsync(ScenarioScale scale, IReadOnlyCollection<string>? only)
    {
        var all = new List<Measurement>();
        // The report measures pause-to-stopped itself (its own runs and table), so it does not run `pause` again.
        foreach (var (name, run) in Scenarios.Where(s => only is null ? s.Name != "pause" : only.Contains(s.Name, StringComparer.Ordinal)))
        {
            await Console.Error.WriteLineAsync($"  running {name} …");
            var watch = Stopwatch.StartNew();
            try
            {
                all.AddRange(await run(scale));
                await Console.Error.WriteLineAsync($"    done in {watch.Elapsed.TotalSeconds:0.0} s (load {PeerScenarios.LoadAverage()})");
            }
#pragma warning disable CA1031 // One scenario failing must not end a report of tens of minutes: the failure is in its table.
            catch (Exception error)
#pragma warning restore CA1031
            {
                await Console.Error.WriteLineAsync($"    {name} failed after {watch.Elapsed.TotalSeconds:0.0} s (load {PeerScenarios.LoadAverage()}): {error}");
                all.Add(new Measurement(name, $"failed in a run: {error.GetType().Name}: {error.Message.Split('\n')[0]}", double.NaN, string.Empty));
            }
        }

        return all;
    }

    /// <summary>A setting as the table shows it: a store connection string with its password hidden.</summary>
    private static string? Shown(string key, string? value) =>
        key.EndsWith("ConnectionString", StringComparison.OrdinalIgnoreCase) ? Holdfast.Storage.Postgres.PostgresConnectionString.Redact(value) : value;
}
