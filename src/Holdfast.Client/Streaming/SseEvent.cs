namespace Holdfast.Client.Streaming;

/// <summary>
/// One Server-Sent Event as it came off the wire: <see cref="EventType"/> (<c>message</c> when the server named none),
/// the joined <c>data:</c> lines, and the <c>id:</c> in effect when it was dispatched (the last id seen, as the spec says).
/// </summary>
/// <param name="EventType">The <c>event:</c> field, or <c>message</c>.</param>
/// <param name="Data">All <c>data:</c> lines of the event joined with <c>\n</c>.</param>
/// <param name="Id">The last event id, or null when the stream has not sent one yet.</param>
/// <param name="Retry">The <c>retry:</c> reconnection time the server asked for, when this event carried one.</param>
internal sealed record SseEvent(string EventType, string Data, string? Id, TimeSpan? Retry = null);
