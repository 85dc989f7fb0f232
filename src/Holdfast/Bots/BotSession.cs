namespace Holdfast.Bots;

/// <summary>Whether a bot session should be connected (<c>active</c>) or was ended (<c>inactive</c>).</summary>
public enum BotSessionStatus
{
    Active,
    Inactive,
}

/// <summary>Wire and storage names of <see cref="BotSessionStatus"/>: <c>active</c> and <c>inactive</c>.</summary>
public static class BotSessionStatusNames
{
    public static string ToWire(this BotSessionStatus status) => status switch
    {
        BotSessionStatus.Active => "active",
        BotSessionStatus.Inactive => "inactive",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, "Unknown bot session status."),
    };

    public static BotSessionStatus Parse(string value) => value switch
    {
        "active" => BotSessionStatus.Active,
        "inactive" => BotSessionStatus.Inactive,
        _ => throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown bot session status."),
    };
}

/// <summary>
/// One row of <c>bot_sessions</c>: the columns of the design record (<c>session_id, created_at, last_message,
/// status, qr_data, updated_at</c>) plus the additive ones (bot type, owner, connection detail, version, and the
/// reported <see cref="Connection"/> state, and the QR's number <see cref="QrSeq"/>, when it was stored and how many
/// QR codes came since the session was last connected), and the <see cref="Holder"/> of its lease: the node whose
/// connector runs it (null when nobody does: ended, or its node stopped).
/// <see cref="Version"/> grows by one with every change.
/// </summary>
public sealed record BotSession(
    string SessionId,
    DateTimeOffset CreatedAt,
    string? LastMessage,
    BotSessionStatus Status,
    string? QrData,
    DateTimeOffset UpdatedAt,
    string BotType,
    string? Owner,
    string? ConnectionDetail,
    long Version,
    DateTimeOffset? LastMessageAt = null,
    BotConnection? Connection = null,
    long QrSeq = 0,
    DateTimeOffset? QrSetAt = null,
    int QrAttempts = 0,
    Cluster.LeaseHolder? Holder = null);

/// <summary>
/// Asks to start bot session <paramref name="SessionId"/>: reactivates the stored row when there is one, else creates
/// it. <paramref name="BotType"/> picks the connector (<c>web</c> built in, <c>bridge</c> for an external runtime).
/// <paramref name="Owner"/> is the user the session belongs to (null: no owner, e.g. the local admin).
/// </summary>
public sealed record StartBotSession(string SessionId, string BotType = "web", string? Owner = null);

/// <summary>What starting a bot session did.</summary>
public enum BotStartOutcome
{
    /// <summary>No row existed; one was created.</summary>
    Created,

    /// <summary>An <c>inactive</c> row existed and is <c>active</c> again; its last message and login state are kept.</summary>
    Reactivated,

    /// <summary>The session was already active; nothing was changed.</summary>
    AlreadyActive,
}

/// <summary>
/// The session after a start request, and what the request did; <paramref name="Lease"/> is the lease the start took
/// with it (<see cref="IBotStore.StartOrReactivateAsync(StartBotSession, Sessions.Actor, BotLeaseRequest?, CancellationToken)"/>), or null.
/// </summary>
public sealed record BotStartResult(BotSession Session, BotStartOutcome Outcome, BotLease? Lease = null);

/// <summary>
/// A page request over bot sessions, ordered by session id. <paramref name="Status"/> and <paramref name="Owner"/>
/// filter when given; <paramref name="After"/> is the <see cref="BotPage.NextCursor"/> of the previous page.
/// </summary>
public sealed record BotListQuery(BotSessionStatus? Status = null, string? Owner = null, string? After = null, int Limit = 50);

/// <summary>A page of bot sessions; <see cref="NextCursor"/> is null on the last page.</summary>
public sealed record BotPage(IReadOnlyList<BotSession> Items, string? NextCursor);
