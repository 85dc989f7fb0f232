using Holdfast.Client.Models;

namespace Holdfast.Client.Streaming;

/// <summary>
/// One event of a generation's live stream (<c>GET /api/v1/generations/{id}/stream</c>), as yielded by
/// <see cref="HoldfastClient.FollowAsync"/>. <see cref="Seq"/> is the position in the session's event log: a follower
/// that reconnects asks for everything after the last seq it saw, so it sees each event exactly once.
/// </summary>
/// <param name="Seq">Position in the session's log (the SSE <c>id:</c>).</param>
public abstract record GenerationStreamEvent(long Seq);

/// <summary>A piece of output text.</summary>
/// <param name="Seq">Position in the session's log.</param>
/// <param name="Text">The text, to be appended to what came before.</param>
public sealed record GenerationChunkEvent(long Seq, string Text) : GenerationStreamEvent(Seq);

/// <summary>The session changed status (e.g. <c>running</c> → <c>paused</c>).</summary>
/// <param name="Seq">Position in the session's log.</param>
/// <param name="Status">The new status.</param>
/// <param name="Reason">Why, when known (e.g. the pause reason).</param>
/// <param name="Error">The error, when the session failed.</param>
public sealed record GenerationStatusEvent(long Seq, GenerationStatus Status, string? Reason, string? Error) : GenerationStreamEvent(Seq);

/// <summary>The last event: the session reached a final status and the server closed the stream.</summary>
/// <param name="Seq">The last seq seen before it.</param>
/// <param name="Status">The final status: completed, cancelled or failed.</param>
public sealed record GenerationDoneEvent(long Seq, GenerationStatus Status) : GenerationStreamEvent(Seq);
