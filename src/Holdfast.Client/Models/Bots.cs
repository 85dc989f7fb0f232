using System.Text.Json.Serialization;

namespace Holdfast.Client.Models;

/// <summary>Status of a bot session, exactly as in the <c>bot_sessions</c> table.</summary>
public enum BotStatus
{
    Active,
    Inactive,
}

/// <summary>A bot session (a row of <c>bot_sessions</c>) as the API returns it.</summary>
public sealed record Bot(
    string SessionId,
    DateTimeOffset CreatedAt,
    string? LastMessage,
    BotStatus Status,
    string? QrData,
    DateTimeOffset UpdatedAt,
    string? BotType,
    string? Owner,
    string? ConnectionDetail,
    long Version,
    BotConnectionInfo? Connection = null,
    long QrSeq = 0,
    int QrAttempts = 0)
{
    /// <summary>
    /// The node whose connector runs the bot under a lease (several nodes on one PostgreSQL): its id, the lease's
    /// fencing epoch (it grows with every takeover) and when the lease expires unless renewed. Null when nobody holds
    /// it (ended, or its node stopped and no other took it over yet).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public SessionHolder? Holder { get; init; }
}

/// <summary>
/// The connection state a runtime last reported (<c>starting, awaiting_qr, connected, reconnecting, disconnected,
/// logged_out, failed</c>), its reason, disconnect code and when.
/// </summary>
public sealed record BotConnectionInfo(string State, string? Reason, int? Code, DateTimeOffset At);

/// <summary>Body of <c>POST /api/v1/bots</c>; <see cref="BotType"/> is <c>web</c> (default) or <c>bridge</c>.</summary>
public sealed record StartBotRequest(string? SessionId, string? BotType = null);

/// <summary>Bridge: body of <c>POST /api/v1/bots/{id}/qr</c>.</summary>
public sealed record BotQrUpdate(string? QrData);

/// <summary>
/// Bridge: body of <c>POST /api/v1/bots/{id}/messages</c>. <see cref="ReceivedAt"/> is when the runtime received the
/// message (default: when the server got it); a message older than the stored last message does not replace it.
/// </summary>
public sealed record BotMessage(string? Text, DateTimeOffset? ReceivedAt = null);

/// <summary>
/// Bridge: body of <c>POST /api/v1/bots/{id}/connection</c>: the runtime's <see cref="State"/> with an optional
/// <see cref="Reason"/> and disconnect <see cref="Code"/> (e.g. Baileys' <c>DisconnectReason</c>). <see cref="Detail"/>
/// is the older name of <see cref="Reason"/>.
/// </summary>
public sealed record BotConnectionUpdate(string? State, string? Detail = null, string? Reason = null, int? Code = null);

/// <summary>
/// Bridge: one command of <c>GET /api/v1/bots/{id}/commands</c> (<c>start</c>: connect the session; <c>end</c>: it was
/// ended, disconnect). <see cref="Version"/> is the session's version after the change and the event's id.
/// </summary>
public sealed record BotCommand(string Command, string SessionId, long Version);

/// <summary>Admins: body of <c>POST /api/v1/bots/{id}/owner</c>, the user the session is given to.</summary>
public sealed record BotOwnerAssignment(string? Owner);
