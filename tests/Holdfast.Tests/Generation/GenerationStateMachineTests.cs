using Holdfast.Generation;
using Holdfast.Sessions;

namespace Holdfast.Tests.Generation;

public sealed class GenerationStateMachineTests
{
    private const string Conflict = "conflict";

    // (status, desired, command, expected "status/desired" or "conflict"); "same" = allowed, nothing changes.
    public static TheoryData<string, string, string, string> Table => new()
    {
        { "queued", "running", "pause", "paused/paused" },
        { "queued", "running", "resume", "same" },
        { "queued", "running", "cancel", "cancelled/cancelled" },
        { "queued", "running", "claim", "running/running" },
        { "queued", "running", "complete", Conflict },
        { "running", "running", "pause", "running/paused" },
        { "running", "running", "resume", "same" },
        { "running", "running", "cancel", "running/cancelled" },
        { "running", "running", "claim", Conflict },
        { "running", "running", "complete", "completed/running" },
        { "running", "running", "stop", "queued/running" },
        { "running", "running", "fail", "failed/running" },
        { "running", "running", "interrupt-auto", "queued/running" },
        { "running", "running", "interrupt-manual", "paused/paused" },
        { "running", "paused", "pause", "same" },
        { "running", "paused", "resume", "running/running" },
        { "running", "paused", "cancel", "running/cancelled" },
        { "running", "paused", "stop", "paused/paused" },
        { "running", "paused", "complete", "completed/paused" },
        { "running", "paused", "interrupt-auto", "paused/paused" },
        { "running", "paused", "interrupt-manual", "paused/paused" },
        { "running", "cancelled", "pause", Conflict },
        { "running", "cancelled", "resume", Conflict },
        { "running", "cancelled", "cancel", "same" },
        { "running", "cancelled", "stop", "cancelled/cancelled" },
        { "running", "cancelled", "complete", "cancelled/cancelled" },
        { "running", "cancelled", "fail", "cancelled/cancelled" },
        { "running", "cancelled", "interrupt-auto", "cancelled/cancelled" },
        { "paused", "paused", "pause", "same" },
        { "paused", "paused", "resume", "queued/running" },
        { "paused", "paused", "cancel", "cancelled/cancelled" },
        { "paused", "paused", "claim", Conflict },
        { "paused", "paused", "stop", Conflict },
        { "failed", "running", "pause", Conflict },
        { "failed", "running", "resume", "queued/running" },
        { "failed", "running", "cancel", "cancelled/cancelled" },
        { "completed", "running", "pause", Conflict },
        { "completed", "running", "resume", Conflict },
        { "completed", "running", "cancel", Conflict },
        { "completed", "running", "interrupt-auto", Conflict },
        { "cancelled", "cancelled", "pause", Conflict },
        { "cancelled", "cancelled", "resume", Conflict },
        { "cancelled", "cancelled", "cancel", "same" },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Apply_Table_MatchesDesign(string status, string desired, string command, string expected)
    {
        var state = new GenerationState(GenerationNames.ParseStatus(status), GenerationNames.ParseDesired(desired));

        var result = GenerationStateMachine.Apply(state, Command(command));

        if (expected == Conflict)
        {
            result.IsAllowed.ShouldBeFalse();
            result.Error!.From.ShouldBe(state);
            result.Error.Message.ShouldNotBeNullOrWhiteSpace();
        }
        else if (expected == "same")
        {
            result.Transition!.Changed.ShouldBeFalse();
            result.Transition.To.ShouldBe(state);
        }
        else
        {
            var to = result.Transition!.To;
            $"{to.Status.ToWire()}/{to.Desired.ToWire()}".ShouldBe(expected);
            result.Transition.From.ShouldBe(state);
            result.Transition.Changed.ShouldBeTrue();
        }
    }

    [Fact]
    public void Apply_PauseWithReason_KeepsReasonThroughStop()
    {
        var running = new GenerationState(GenerationStatus.Running, GenerationDesiredState.Running);

        var requested = GenerationStateMachine.Apply(running, GenerationCommand.Pause("lunch")).Transition!.To;
        var stopped = GenerationStateMachine.Apply(requested, GenerationCommand.Stop).Transition!.To;

        stopped.ShouldBe(new GenerationState(GenerationStatus.Paused, GenerationDesiredState.Paused, "lunch"));
    }

    [Fact]
    public void Apply_InterruptManual_PausesWithReasonInterrupted()
    {
        var running = new GenerationState(GenerationStatus.Running, GenerationDesiredState.Running);

        var to = GenerationStateMachine.Apply(running, GenerationCommand.Interrupt(GenerationRecoveryPolicy.Manual)).Transition!.To;

        to.PauseReason.ShouldBe(GenerationStateMachine.InterruptedPauseReason);
    }

    [Fact]
    public void ApplyOrThrow_ResumeCompleted_ThrowsConflictWithBothStates()
    {
        var completed = new GenerationState(GenerationStatus.Completed, GenerationDesiredState.Running);

        var error = Should.Throw<SessionConflictException>(() => GenerationStateMachine.ApplyOrThrow(completed, GenerationCommand.Resume));

        error.CurrentState.ShouldBe("completed");
        error.RequestedState.ShouldBe("running");
        error.Message.ShouldContain("already completed");
    }

    private static GenerationCommand Command(string name) => name switch
    {
        "pause" => GenerationCommand.Pause(),
        "resume" => GenerationCommand.Resume,
        "cancel" => GenerationCommand.Cancel,
        "claim" => GenerationCommand.Claim,
        "complete" => GenerationCommand.Complete,
        "stop" => GenerationCommand.Stop,
        "fail" => GenerationCommand.Fail,
        "interrupt-auto" => GenerationCommand.Interrupt(GenerationRecoveryPolicy.Auto),
        "interrupt-manual" => GenerationCommand.Interrupt(GenerationRecoveryPolicy.Manual),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "Unknown command."),
    };
}
