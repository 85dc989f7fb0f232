namespace Holdfast.Generation;

/// <summary>The part of a session the state machine decides on.</summary>
public readonly record struct GenerationState(GenerationStatus Status, GenerationDesiredState Desired, string? PauseReason = null)
{
    /// <summary><c>running</c>, or <c>running (desired paused)</c> while a control request waits for the runner.</summary>
    public override string ToString() =>
        DesiredFor(Status) is { } natural && natural != Desired ? $"{Status.ToWire()} (desired {Desired.ToWire()})" : Status.ToWire();

    private static GenerationDesiredState? DesiredFor(GenerationStatus status) => status switch
    {
        GenerationStatus.Paused => GenerationDesiredState.Paused,
        GenerationStatus.Cancelled => GenerationDesiredState.Cancelled,
        GenerationStatus.Queued or GenerationStatus.Running => GenerationDesiredState.Running,
        _ => null,
    };
}

/// <summary>What is asked of a session: user controls (pause, resume, cancel) and the runner's own reports.</summary>
public enum GenerationCommandKind
{
    /// <summary>User: stop producing output for now, keep it resumable.</summary>
    Pause,

    /// <summary>User: continue a paused or failed session from its output so far.</summary>
    Resume,

    /// <summary>User: stop for good, keep the partial output.</summary>
    Cancel,

    /// <summary>Runner: a queued session starts running on this node.</summary>
    Claim,

    /// <summary>Runner: the backend finished the output.</summary>
    Complete,

    /// <summary>Runner: the run stopped because the desired state changed (pause, cancel) or the runner was asked to stop.</summary>
    Stop,

    /// <summary>Runner: the backend failed (refused, 5xx, stream cut, timeout).</summary>
    Fail,

    /// <summary>Recovery: a session was left running by a process that is gone.</summary>
    Interrupt,
}

/// <summary>A command with its argument: the pause reason, or for <see cref="GenerationCommandKind.Interrupt"/> the policy (<c>auto</c>|<c>manual</c>).</summary>
public sealed record GenerationCommand(GenerationCommandKind Kind, string? Argument = null)
{
    public static readonly GenerationCommand Resume = new(GenerationCommandKind.Resume);
    public static readonly GenerationCommand Cancel = new(GenerationCommandKind.Cancel);
    public static readonly GenerationCommand Claim = new(GenerationCommandKind.Claim);
    public static readonly GenerationCommand Complete = new(GenerationCommandKind.Complete);
    public static readonly GenerationCommand Stop = new(GenerationCommandKind.Stop);
    public static readonly GenerationCommand Fail = new(GenerationCommandKind.Fail);

    public static GenerationCommand Pause(string? reason = null) => new(GenerationCommandKind.Pause, reason);

    public static GenerationCommand Interrupt(GenerationRecoveryPolicy policy) =>
        new(GenerationCommandKind.Interrupt, policy == GenerationRecoveryPolicy.Manual ? "manual" : "auto");

    /// <summary>Wire name of the command (used in the audit trail), e.g. <c>pause</c>.</summary>
    public string Name => Kind.ToString().ToLowerInvariant();
}

/// <summary>An allowed transition. <see cref="Changed"/> is false when the command already held (nothing to write).</summary>
public sealed record GenerationTransition(GenerationState From, GenerationCommand Command, GenerationState To)
{
    public bool Changed => From != To;

    public bool StatusChanged => From.Status != To.Status;
}

/// <summary>A refused transition: the state it was asked in, the command, and a sentence for a person.</summary>
public sealed record GenerationTransitionError(GenerationState From, GenerationCommand Command, string Message)
{
    /// <summary>The status the command aimed at, for error reports.</summary>
    public string Requested => Command.Kind switch
    {
        GenerationCommandKind.Pause => "paused",
        GenerationCommandKind.Resume or GenerationCommandKind.Claim => "running",
        GenerationCommandKind.Cancel => "cancelled",
        GenerationCommandKind.Complete => "completed",
        GenerationCommandKind.Fail => "failed",
        _ => Command.Name,
    };
}

/// <summary>Either a <see cref="Transition"/> or an <see cref="Error"/>.</summary>
public readonly record struct GenerationTransitionResult(GenerationTransition? Transition, GenerationTransitionError? Error)
{
    public bool IsAllowed => Transition is not null;
}

/// <summary>
/// The one state machine of generation sessions: a pure function of (state, command). Every change of a session's
/// status or desired state goes through <see cref="Apply"/>, and the store writes its result as a compare-and-swap
/// on (status, version).
/// </summary>
public static class GenerationStateMachine
{
    /// <summary>Default pause reason when the user gives none.</summary>
    public const string UserPauseReason = "user";

    /// <summary>Pause reason of a session found running after a crash under the <c>manual</c> recovery policy.</summary>
    public const string InterruptedPauseReason = "interrupted";

    public static GenerationTransitionResult Apply(GenerationState state, GenerationCommand command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var (status, desired, _) = state;
        return command.Kind switch
        {
            GenerationCommandKind.Pause => status switch
            {
                GenerationStatus.Queued => To(state, command, new(GenerationStatus.Paused, GenerationDesiredState.Paused, command.Argument ?? UserPauseReason)),
                GenerationStatus.Running when desired == GenerationDesiredState.Running =>
                    To(state, command, state with { Desired = GenerationDesiredState.Paused, PauseReason = command.Argument ?? UserPauseReason }),
                GenerationStatus.Running when desired == GenerationDesiredState.Paused => Same(state, command),
                GenerationStatus.Running => Refuse(state, command, "The session is being cancelled; it cannot be paused."),
                GenerationStatus.Paused => Same(state, command),
                GenerationStatus.Failed => Refuse(state, command, "The session has failed, so there is nothing to pause; resume it or cancel it."),
                _ => Refuse(state, command, $"The session is already {status.ToWire()}; it cannot be paused."),
            },
            GenerationCommandKind.Resume => status switch
            {
                GenerationStatus.Paused or GenerationStatus.Failed => To(state, command, new(GenerationStatus.Queued, GenerationDesiredState.Running)),
                GenerationStatus.Queued => Same(state, command),
                GenerationStatus.Running when desired == GenerationDesiredState.Running => Same(state, command),
                GenerationStatus.Running when desired == GenerationDesiredState.Paused =>
                    To(state, command, state with { Desired = GenerationDesiredState.Running, PauseReason = null }),
                GenerationStatus.Running => Refuse(state, command, "The session is being cancelled; it cannot be resumed."),
                _ => Refuse(state, command, $"The session is already {status.ToWire()}; only a paused or failed session can be resumed (fork it to continue its output in a new session)."),
            },
            GenerationCommandKind.Cancel => status switch
            {
                GenerationStatus.Queued or GenerationStatus.Paused or GenerationStatus.Failed =>
                    To(state, command, new(GenerationStatus.Cancelled, GenerationDesiredState.Cancelled)),
                GenerationStatus.Running when desired == GenerationDesiredState.Cancelled => Same(state, command),
                GenerationStatus.Running => To(state, command, state with { Desired = GenerationDesiredState.Cancelled, PauseReason = null }),
                GenerationStatus.Cancelled => Same(state, command),
                _ => Refuse(state, command, "The session is already completed; there is nothing to cancel."),
            },
            GenerationCommandKind.Claim => status == GenerationStatus.Queued && desired == GenerationDesiredState.Running
                ? To(state, command, new(GenerationStatus.Running, GenerationDesiredState.Running))
                : Refuse(state, command, $"Only a queued session can start running; this one is {state}."),
            GenerationCommandKind.Complete => status == GenerationStatus.Running
                ? To(state, command, desired == GenerationDesiredState.Cancelled
                    ? new(GenerationStatus.Cancelled, GenerationDesiredState.Cancelled)
                    : new(GenerationStatus.Completed, desired))
                : NotRunning(state, command),
            GenerationCommandKind.Stop => status == GenerationStatus.Running
                ? To(state, command, AfterStop(state, requeue: true))
                : NotRunning(state, command),
            GenerationCommandKind.Fail => status == GenerationStatus.Running
                ? To(state, command, desired == GenerationDesiredState.Cancelled
                    ? new(GenerationStatus.Cancelled, GenerationDesiredState.Cancelled)
                    : new(GenerationStatus.Failed, desired))
                : NotRunning(state, command),
            GenerationCommandKind.Interrupt => status == GenerationStatus.Running
                ? To(state, command, desired == GenerationDesiredState.Running && command.Argument == "manual"
                    ? new(GenerationStatus.Paused, GenerationDesiredState.Paused, InterruptedPauseReason)
                    : AfterStop(state, requeue: true))
                : NotRunning(state, command),
            _ => throw new ArgumentOutOfRangeException(nameof(command), command.Kind, "Unknown command."),
        };
    }

    /// <summary>Applies <paramref name="command"/> or throws <see cref="Sessions.SessionConflictException"/> with the error's message.</summary>
    public static GenerationTransition ApplyOrThrow(GenerationState state, GenerationCommand command)
    {
        var result = Apply(state, command);
        return result.Transition ?? throw new Sessions.SessionConflictException(
            result.Error!.Message, result.Error.From.Status.ToWire(), result.Error.Requested);
    }

    private static GenerationState AfterStop(GenerationState state, bool requeue) => state.Desired switch
    {
        GenerationDesiredState.Paused => new(GenerationStatus.Paused, GenerationDesiredState.Paused, state.PauseReason ?? UserPauseReason),
        GenerationDesiredState.Cancelled => new(GenerationStatus.Cancelled, GenerationDesiredState.Cancelled),
        _ => requeue ? new(GenerationStatus.Queued, GenerationDesiredState.Running) : state,
    };

    private static GenerationTransitionResult To(GenerationState from, GenerationCommand command, GenerationState to) =>
        new(new GenerationTransition(from, command, to), null);

    private static GenerationTransitionResult Same(GenerationState state, GenerationCommand command) =>
        new(new GenerationTransition(state, command, state), null);

    private static GenerationTransitionResult Refuse(GenerationState state, GenerationCommand command, string message) =>
        new(null, new GenerationTransitionError(state, command, message));

    private static GenerationTransitionResult NotRunning(GenerationState state, GenerationCommand command) =>
        Refuse(state, command, $"The runner reported '{command.Name}' for a session that is {state}, not running.");
}

/// <summary>Wire names (lower case) of the generation enums.</summary>
public static class GenerationNames
{
    public static string ToWire(this GenerationStatus status) => status switch
    {
        GenerationStatus.Queued => "queued",
        GenerationStatus.Running => "running",
        GenerationStatus.Paused => "paused",
        GenerationStatus.Completed => "completed",
        GenerationStatus.Cancelled => "cancelled",
        GenerationStatus.Failed => "failed",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, "Unknown status."),
    };

    public static string ToWire(this GenerationDesiredState desired) => desired switch
    {
        GenerationDesiredState.Running => "running",
        GenerationDesiredState.Paused => "paused",
        GenerationDesiredState.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(desired), desired, "Unknown desired state."),
    };

    public static string ToWire(this GenerationLogEventType type) => type == GenerationLogEventType.Chunk ? "chunk" : "status";

    public static GenerationStatus ParseStatus(string value) => value switch
    {
        "queued" => GenerationStatus.Queued,
        "running" => GenerationStatus.Running,
        "paused" => GenerationStatus.Paused,
        "completed" => GenerationStatus.Completed,
        "cancelled" => GenerationStatus.Cancelled,
        "failed" => GenerationStatus.Failed,
        _ => throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown generation status."),
    };

    /// <summary>Parses a status given by a person (case-insensitive); null when it is not one.</summary>
    public static GenerationStatus? TryParseStatus(string? value) => value?.ToLowerInvariant() switch
    {
        "queued" => GenerationStatus.Queued,
        "running" => GenerationStatus.Running,
        "paused" => GenerationStatus.Paused,
        "completed" => GenerationStatus.Completed,
        "cancelled" or "canceled" => GenerationStatus.Cancelled,
        "failed" => GenerationStatus.Failed,
        _ => null,
    };

    public static GenerationDesiredState ParseDesired(string value) => value switch
    {
        "running" => GenerationDesiredState.Running,
        "paused" => GenerationDesiredState.Paused,
        "cancelled" => GenerationDesiredState.Cancelled,
        _ => throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown desired state."),
    };
}
