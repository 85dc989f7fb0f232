using BenchmarkDotNet.Attributes;
using Holdfast.Generation;

namespace Holdfast.Benchmarks.Micro;

/// <summary>The pure state machine every control request and runner report goes through.</summary>
[MemoryDiagnoser]
public class StateMachineBenchmarks
{
    private static readonly GenerationState Running = new(GenerationStatus.Running, GenerationDesiredState.Running);
    private static readonly GenerationState Paused = new(GenerationStatus.Paused, GenerationDesiredState.Paused, "user");

    [Benchmark]
    public GenerationTransitionResult PauseRunning() => GenerationStateMachine.Apply(Running, GenerationCommand.Pause("user"));

    [Benchmark]
    public GenerationTransitionResult ResumePaused() => GenerationStateMachine.Apply(Paused, GenerationCommand.Resume);

    [Benchmark]
    public GenerationTransitionResult PausePausedIsANoOp() => GenerationStateMachine.Apply(Paused, GenerationCommand.Pause("user"));
}
