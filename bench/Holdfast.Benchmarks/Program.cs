using BenchmarkDotNet.Running;
using Holdfast.Benchmarks.Scenarios;

// `scenarios` (the default): end-to-end measurements over a real SQLite file and a real server, printed as the
// Markdown table the README keeps. `report`: the full run (peers in the same run, every scenario several times) that
// writes BENCHMARKS.md and README's table between the bench markers. `durable`: Holdfast's side of the SQLite pair alone (`--runs N`, `--synchronous FULL|NORMAL`; `--postgres` for the PostgreSQL pair's), for A/B runs. `cluster`: three `holdfast serve` nodes on one
// PostgreSQL (takeover after SIGKILL, cross-node pause latency; `--runs N`). `micro`: BenchmarkDotNet micro-benchmarks (any BenchmarkDotNet arguments after it).
if (args is ["micro", .. var rest])
{
    BenchmarkSwitcher.FromAssembly(typeof(ScenarioRunner).Assembly).Run(rest);
    return 0;
}

if (args is ["serve-child", var dataDirectory, .. var settings])
{
    // A server in its own process, for the resident-memory scenario (ScaleScenarios.ResidentMemoryAsync).
    return await ChildServer.ServeAsync(dataDirectory, settings);
}

if (args is ["cluster", .. var clusterArgs])
{
    return await ClusterScenarios.RunCommandAsync(clusterArgs);
}

if (args is ["durable", .. var durableArgs])
{
    // Holdfast's side of the SQLite (or, with --postgres, the PostgreSQL) pair alone, N times, with the raw limit between runs: for A/B runs and profiles.
    return await PeerScenarios.DurableCommandAsync(durableArgs);
}

if (args is ["report", .. var reportArgs])
{
    return await ReportRunner.RunAsync(reportArgs);
}

return await ScenarioRunner.RunAsync(args is ["scenarios", .. var scenarioArgs] ? scenarioArgs : args);
