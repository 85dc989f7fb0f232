namespace Holdfast.Generation;

/// <summary>
/// Where a generation session is. <c>queued → running → paused ⇄ running → completed | cancelled | failed</c>;
/// <see cref="Failed"/> keeps its partial output and may be resumed. Wire names are the lower-case member names.
/// </summary>
public enum GenerationStatus
{
    Queued,
    Running,
    Paused,
    Completed,
    Cancelled,
    Failed,
}

/// <summary>What the user last asked for. The runner that owns a session reconciles its status towards it.</summary>
public enum GenerationDesiredState
{
    Running,
    Paused,
    Cancelled,
}

/// <summary>Kind of an entry in a session's durable event log.</summary>
public enum GenerationLogEventType
{
    /// <summary>A piece of output text.</summary>
    Chunk,

    /// <summary>A status change (payload: <see cref="GenerationStatusChange"/>).</summary>
    Status,
}

/// <summary>One input message: a role (<c>system</c>, <c>developer</c>, <c>user</c>, <c>assistant</c>) and its text.</summary>
public sealed record GenerationMessage(string Role, string Content);

/// <summary>Sampling parameters passed to the backend; <c>null</c> means the backend's default.</summary>
public sealed record GenerationParameters
{
    public static readonly GenerationParameters Default = new();

    public double? Temperature { get; init; }

    public double? TopP { get; init; }

    /// <summary>Upper bound on output tokens for the whole session (all runs together).</summary>
    public int? MaxTokens { get; init; }

    public long? Seed { get; init; }

    public IReadOnlyList<string>? Stop { get; init; }
}

/// <summary>Token counts: input as reported by the backend (when it does), output as counted chunks.</summary>
public sealed record GenerationUsage(long? InputTokens, long OutputTokens);

/// <summary>
/// One generation: input messages + model + parameters → one output text, with its status and the durable facts
/// around it. <see cref="Version"/> changes with every change of status or desired state (output appends do not
/// change it), so it is the value to pass as <c>expectedVersion</c> for optimistic concurrency.
/// </summary>
public sealed record GenerationSession
{
    public required string Id { get; init; }

    public required string Owner { get; init; }

    /// <summary>Configured backend name (a key under <c>Backends</c>, or <c>scripted</c>).</summary>
    public required string Backend { get; init; }

    public required string Model { get; init; }

    public required IReadOnlyList<GenerationMessage> Input { get; init; }

    public required GenerationParameters Parameters { get; init; }

    public required GenerationStatus Status { get; init; }

    public required GenerationDesiredState DesiredState { get; init; }

    /// <summary>Why a paused session is paused: <c>user</c> (or the reason given), or <c>interrupted</c> by a crash.</summary>
    public string? PauseReason { get; init; }

    /// <summary>The last failure, written for a person (what went wrong and what to configure). Kept after a resume until the next failure.</summary>
    public string? Error { get; init; }

    /// <summary><c>stop</c>, <c>length</c>, or what the backend reported, once completed.</summary>
    public string? FinishReason { get; init; }

    public required GenerationUsage Usage { get; init; }

    public string? PreviousSessionId { get; init; }

    public string? ForkedFrom { get; init; }

    public long? ForkedAtSeq { get; init; }

    /// <summary>
    /// How the last run continued existing output: <c>null</c> (nothing to continue), <c>prefill</c> (output given as
    /// an assistant prefix), or <c>fallback:instruction</c> (the backend cannot prefill; it was asked to continue).
    /// </summary>
    public string? Continuation { get; init; }

    /// <summary>Output so far (materialized from the event log; up to the last flush while running).</summary>
    public required string Output { get; init; }

    /// <summary>Sequence number of the last persisted event-log entry.</summary>
    public required long LastSeq { get; init; }

    /// <summary>How many runs were started (1 for an uninterrupted generation).</summary>
    public required int Attempts { get; init; }

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    public string? IdempotencyKey { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required DateTimeOffset UpdatedAt { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }

    public required long Version { get; init; }

    /// <summary>True once the retention sweep merged the log's chunks into one (<see cref="GenerationOptions.LogRetention"/>).</summary>
    public bool LogCompacted { get; init; }

    /// <summary>True for <c>completed</c> and <c>cancelled</c>: nothing will change any more (except deletion).</summary>
    public bool IsFinal => Status is GenerationStatus.Completed or GenerationStatus.Cancelled;
}

/// <summary>Payload of a <see cref="GenerationLogEventType.Status"/> event.</summary>
public sealed record GenerationStatusChange(
    GenerationStatus Status,
    string? Reason = null,
    string? Error = null,
    string? FinishReason = null);

/// <summary>
/// One entry of a session's durable event log, ordered by <see cref="Seq"/> (from 1, no gaps, except in a log compacted
/// under <see cref="GenerationOptions.LogRetention"/>, where one chunk at the seq of the last one holds the whole
/// output). A chunk carries <see cref="Text"/>; a status event carries <see cref="StatusChange"/>.
/// </summary>
public sealed record GenerationLogEvent(
    string SessionId,
    long Seq,
    GenerationLogEventType Type,
    string? Text,
    GenerationStatusChange? StatusChange)
{
    public static GenerationLogEvent Chunk(string sessionId, long seq, string text) =>
        new(sessionId, seq, GenerationLogEventType.Chunk, text, null);

    public static GenerationLogEvent Status(string sessionId, long seq, GenerationStatusChange change) =>
        new(sessionId, seq, GenerationLogEventType.Status, null, change);

    /// <summary>
    /// Set on a chunk relayed live, before its group commit: the fencing token of the run that produced it. Null on an
    /// event read from the log. A relay that must send only durable text sends a live chunk as it is only once this
    /// node's group commit stored it under the same token; otherwise (the run lost its lease and another run wrote
    /// that seq) it sends what the log holds.
    /// </summary>
    public long? RunEpoch { get; init; }

    /// <summary>True for a status event that ends a follow: completed, cancelled or failed.</summary>
    public bool IsTerminal => StatusChange is { Status: GenerationStatus.Completed or GenerationStatus.Cancelled or GenerationStatus.Failed };
}

/// <summary>A request to start a generation.</summary>
public sealed record CreateGenerationRequest
{
    /// <summary>Who owns the session; only they (and admins) can see or control it.</summary>
    public required string Owner { get; init; }

    /// <summary>Model name; with no <see cref="Backend"/> named, <c>scripted</c> routes to the deterministic scripted backend.</summary>
    public required string Model { get; init; }

    /// <summary>Backend name (a key under <c>Backends</c>, or <c>scripted</c>); default <c>Generation:DefaultBackend</c>.</summary>
    public string? Backend { get; init; }

    public required IReadOnlyList<GenerationMessage> Input { get; init; }

    public GenerationParameters? Parameters { get; init; }

    /// <summary>Chains this session after another (multi-turn): the model sees that conversation first.</summary>
    public string? PreviousSessionId { get; init; }

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Retries of a start with the same key (per owner) return the same session instead of a second one.</summary>
    public string? IdempotencyKey { get; init; }
}

/// <summary>Filter and page of <see cref="GenerationSessions.ListAsync"/>.</summary>
public sealed record GenerationListQuery
{
    /// <summary>Only this owner's sessions; <c>null</c> for all (admin).</summary>
    public string? Owner { get; init; }

    public GenerationStatus? Status { get; init; }

    /// <summary>1–500; default 50.</summary>
    public int Limit { get; init; } = 50;

    /// <summary>The <see cref="GenerationPage.NextCursor"/> of the previous page.</summary>
    public string? Cursor { get; init; }
}

/// <summary>A page of sessions, newest first.</summary>
public sealed record GenerationPage(IReadOnlyList<GenerationSession> Items, string? NextCursor);
