using BenchmarkDotNet.Running;
using Holdfast.Benchmarks.Scenarios;

// `scenarios` (the default): end-to-end measurements over a real SQLite file and a real server, printed as the
// Markdown table the README keeps. `micro`: BenchmarkDotNet micro-benchmarks (any BenchmarkDotNet arguments after it).
if (args is ["micro", .. var rest])
{
    BenchmarkSwitcher.FromAssembly(typeof(ScenarioRunner).Assembly).Run(rest);
    return 0;
}

return await ScenarioRunner.RunAsync(args is ["scenarios", .. var scenarioArgs] ? scenarioArgs : args);
