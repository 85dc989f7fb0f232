using Holdfast.Sessions;

namespace Holdfast.Audit;

/// <summary>
/// One entry of the append-only audit trail (<c>session_events</c>): who did what to which session, from which
/// state to which, when and why. <see cref="Seq"/> counts from 1 per session.
/// </summary>
public sealed record AuditEvent(
    SessionKind Kind,
    string SessionId,
    long Seq,
    DateTimeOffset At,
    string Actor,
    string Action,
    string? FromState,
    string? ToState,
    string? Detail);

/// <summary>A page of audit events, newest first; pass <see cref="NextBeforeSeq"/> back to read the next page.</summary>
public sealed record AuditPage(IReadOnlyList<AuditEvent> Events, long? NextBeforeSeq);

/// <summary>Reads the audit trail. Writing happens inside the store, in the same transaction as each change.</summary>
public interface IAuditLog
{
    /// <summary>
    /// Events of one session, newest first, at most <paramref name="limit"/> (1–1000), only those with
    /// <c>seq &lt; beforeSeq</c> when given. Completes with an empty page for a session without events.
    /// </summary>
    Task<AuditPage> ReadAuditAsync(SessionKind kind, string sessionId, long? beforeSeq = null, int limit = 100, CancellationToken cancellationToken = default);
}
