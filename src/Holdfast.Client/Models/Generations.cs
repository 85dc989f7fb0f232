using System.Text.Json.Serialization;

namespace Holdfast.Client.Models;

/// <summary>Lifecycle state of a generation session.</summary>
public enum GenerationStatus
{
    Queued,
    Running,
    Paused,
    Completed,
    Cancelled,
    Failed,
}

/// <summary>One input message of a generation (<c>role</c> is <c>system</c>, <c>user</c> or <c>assistant</c>).</summary>
public sealed record InputMessage(string Role, string Content);

/// <summary>Sampling parameters of a generation; every field is optional.</summary>
public sealed record GenerationParameters(
    double? Temperature = null,
    double? TopP = null,
    int? MaxTokens = null,
    long? Seed = null,
    IReadOnlyList<string>? Stop = null);

/// <summary>Token counts of a generation.</summary>
public sealed record GenerationUsage(long InputTokens, long OutputTokens);

/// <summary>
/// Body of <c>POST /api/v1/generations</c>. <see cref="Input"/> accepts on the wire either an array of
/// <c>{role, content}</c> or a plain string (one user message).
/// </summary>
public sealed record CreateGenerationRequest(
    string? Model,
    [property: JsonConverter(typeof(InputMessagesJsonConverter))] IReadOnlyList<InputMessage>? Input,
    string? Backend = null,
    GenerationParameters? Parameters = null,
    string? PreviousSessionId = null,
    IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>A generation session as the API returns it.</summary>
public sealed record Generation(
    string Id,
    string Owner,
    string Model,
    string Backend,
    GenerationStatus Status,
    string? DesiredState,
    string? PauseReason,
    string? Error,
    string? FinishReason,
    GenerationUsage? Usage,
    string? PreviousSessionId,
    string? ForkedFrom,
    long? ForkedAtSeq,
    IReadOnlyList<InputMessage> Input,
    GenerationParameters? Parameters,
    string? Output,
    long LastSeq,
    long Version,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? CompletedAt,
    IReadOnlyDictionary<string, string>? Metadata)
{
    /// <summary>
    /// The node running the session under a lease (<c>GET /api/v1/generations/{id}</c>): its id, the lease's fencing
    /// epoch and when the lease expires unless renewed. Null when nobody holds it (not running), and in lists.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public SessionHolder? Holder { get; init; }

    /// <summary>True for <c>completed</c>, <c>cancelled</c> and <c>failed</c> (failed may still be resumed).</summary>
    [JsonIgnore]
    public bool IsFinished => Status is GenerationStatus.Completed or GenerationStatus.Cancelled or GenerationStatus.Failed;
}

/// <summary>Who holds a running session: the node, the fencing epoch of its lease, and when the lease expires unless renewed.</summary>
public sealed record SessionHolder(string NodeId, long Epoch, DateTimeOffset LeaseExpiresAt);

/// <summary>One <c>holdfast serve</c> node on the store (<c>GET /api/v1/nodes</c>).</summary>
/// <param name="NodeId">The id it holds leases under (<c>Cluster:NodeId</c>).</param>
/// <param name="StartedAt">When it first renewed after its last start.</param>
/// <param name="HeartbeatAt">Its last heartbeat (written with every lease renewal).</param>
/// <param name="StoppedAt">When it stopped gracefully; null while it runs, or after a crash (its heartbeat then ages).</param>
/// <param name="Alive">Heartbeat younger than the lease duration and not stopped.</param>
/// <param name="SessionsHeld">Running generation sessions it holds.</param>
public sealed record ClusterNodeInfo(string NodeId, DateTimeOffset StartedAt, DateTimeOffset HeartbeatAt, DateTimeOffset? StoppedAt, bool Alive, int SessionsHeld);

/// <summary>Optional body of <c>POST /api/v1/generations/{id}/pause|resume|cancel</c>.</summary>
public sealed record ControlRequest(string? Reason = null, long? ExpectedVersion = null);

/// <summary>Optional body of <c>POST /api/v1/generations/{id}/fork</c>: fork after output seq <see cref="AtSeq"/> (default: all of it).</summary>
public sealed record ForkRequest(long? AtSeq = null);

/// <summary>One entry of a generation's durable event log (<c>GET /api/v1/generations/{id}/log</c>).</summary>
/// <param name="Seq">Position in the session's log, from 1, strictly increasing.</param>
/// <param name="Type"><c>chunk</c> (output text) or <c>status</c> (a state change).</param>
/// <param name="Text">Output text of a chunk.</param>
/// <param name="Status">New status of a status event.</param>
/// <param name="Reason">Why the status changed (pause reason, finish reason), when known.</param>
/// <param name="Error">Error message of a failure.</param>
/// <param name="At">When it was recorded, when known.</param>
public sealed record LogEvent(
    long Seq,
    string Type,
    string? Text = null,
    GenerationStatus? Status = null,
    string? Reason = null,
    string? Error = null,
    DateTimeOffset? At = null);

/// <summary>A page of the durable log, in seq order.</summary>
public sealed record LogPage(IReadOnlyList<LogEvent> Items);

/// <summary>SSE <c>event: chunk</c> payload.</summary>
public sealed record StreamChunk(long Seq, string Text);

/// <summary>SSE <c>event: status</c> payload.</summary>
public sealed record StreamStatus(long Seq, GenerationStatus Status, string? Reason = null, string? Error = null);

/// <summary>SSE <c>event: done</c> payload: the stream ends after it.</summary>
public sealed record StreamDone(GenerationStatus Status);
