using BenchmarkDotNet.Running;
using Holdfast.Benchmarks.Scenarios;

// `scenarios` (the default): end-to-end measurements over a real SQLite file and a real server, printed as the
// Markdown table the README keeps. `report`: the full run (peers in the same run, every scenario several times) that
// writes BENCHMARKS.md and README's table between the bench markers. `cluster`: three `holdfast serve` nodes on one
// PostgreSQL (takeover after SIGKILL, cross-node pause latency; `--runs N`). `micro`: BenchmarkDotNet micro-benchmarks (any BenchmarkDotNet arguments after it).
if (args is ["micro", .. var rest])
{
    BenchmarkSwitcher.FromAssembly(typeof(ScenarioRunner).Assembly).Run(rest);
    return 0;
}

if (args is ["cluster", .. var clusterArgs])
{
    return await ClusterScenarios.RunCommandAsync(clusterArgs);
}

if (args is ["report", .. var reportArgs])
{
    return await ReportRunner.RunAsync(reportArgs);
}

return await ScenarioRunner.RunAsync(args is ["scenarios", .. var scenarioArgs] ? scenarioArgs : args);
