using System.Globalization;
using Holdfast.Audit;
using Holdfast.Sessions;

namespace Holdfast.Bots;

/// <summary>
/// What a store writes for one change of a bot session, as <see cref="BotChangeRule.Decide"/> decided it: the audit
/// action and detail, and the status before and after. A store persists exactly this (the row update and the audit
/// event in one transaction).
/// </summary>
public sealed record BotChange(string Action, string? Detail, string FromStatus, string ToStatus);

/// <summary>
/// The rule of one change of a bot session (set the QR, record a message, end, …), without SQL: whether the session
/// must be active, when the change is a no-op, what is refused, and what the audit trail says. Every store applies it
/// inside its write transaction, on the row as it is now (<see cref="Decide"/>).
/// </summary>
public sealed class BotChangeRule
{
    private readonly string? _requireActive;
    private readonly Func<BotSession, bool> _isNoOp;
    private readonly Func<BotSession, string?> _detail;
    private readonly string? _toStatus;

    internal BotChangeRule(string? requireActive, Func<BotSession, bool> isNoOp, string action, Func<BotSession, string?> detail, string? toStatus)
    {
        _requireActive = requireActive;
        _isNoOp = isNoOp;
        Action = action;
        _detail = detail;
        _toStatus = toStatus;
    }

    /// <summary>The audit action (<see cref="AuditActions"/>).</summary>
    public string Action { get; }

    /// <summary>
    /// Decides the change on <paramref name="existing"/> (the row read in the write transaction): null when it changes
    /// nothing (the same request again), else what to write. Throws <see cref="SessionConflictException"/> when the
    /// change is refused in the session's current state (inactive, connected, an illegal connection transition).
    /// </summary>
    public BotChange? Decide(BotSession existing)
    {
        ArgumentNullException.ThrowIfNull(existing);
        if (_requireActive is not null && existing.Status != BotSessionStatus.Active)
        {
            throw new SessionConflictException(
                $"Cannot {_requireActive} bot session '{existing.SessionId}': it is inactive. Start it again first.", "inactive");
        }

        if (_isNoOp(existing))
        {
            return null;
        }

        var from = existing.Status.ToWire();
        return new BotChange(Action, _detail(existing), from, _toStatus ?? from);
    }
}

/// <summary>What a start does to the stored row (<see cref="BotRules.DecideStart"/>), with the audit detail for the trail.</summary>
public sealed record BotStartPlan(BotStartOutcome Outcome, string? Detail);

/// <summary>
/// The rules of bot sessions, as pure functions every store applies inside its write transaction (like
/// <c>GenerationRules</c> for generations): starting (create, reactivate, refuse another owner's id), and every
/// change's no-op, refusal and audit wording. A store keeps only the SQL.
/// </summary>
public static class BotRules
{
    /// <summary>
    /// Decides a start on the row as it is (<paramref name="existing"/>, null when there is none): create it;
    /// reactivate an inactive one (its last message and login state are kept); or return an active one as it is.
    /// Refuses with <see cref="BotIdUnavailableException"/> a session of another owner or of none when the request has
    /// an owner (a start never adopts a session; an owner is given only by an assignment), and with
    /// <see cref="SessionConflictException"/> an active session of another bot type.
    /// </summary>
    public static BotStartPlan DecideStart(BotSession? existing, StartBotSession request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (existing is null)
        {
            return new BotStartPlan(BotStartOutcome.Created, $"bot_type={request.BotType}");
        }

        if (request.Owner is not null && !string.Equals(existing.Owner, request.Owner, StringComparison.Ordinal))
        {
            throw new BotIdUnavailableException(request.SessionId);
        }

        if (existing.Status == BotSessionStatus.Active)
        {
            if (!string.Equals(existing.BotType, request.BotType, StringComparison.Ordinal))
            {
                throw new SessionConflictException(
                    $"Bot session '{request.SessionId}' is active as a '{existing.BotType}' bot; end it before starting it as '{request.BotType}'.",
                    "active",
                    "active");
            }

            return new BotStartPlan(BotStartOutcome.AlreadyActive, null);
        }

        return new BotStartPlan(
            BotStartOutcome.Reactivated,
            string.Equals(existing.BotType, request.BotType, StringComparison.Ordinal) ? $"bot_type={request.BotType}" : $"bot_type={existing.BotType}->{request.BotType}");
    }

    /// <summary>Gives the session to <paramref name="owner"/>; the same owner again changes nothing.</summary>
    public static BotChangeRule AssignOwner(string owner) => new(
        requireActive: null,
        isNoOp: existing => string.Equals(existing.Owner, owner, StringComparison.Ordinal),
        AuditActions.BotOwner,
        existing => $"owner {existing.Owner ?? "none"} -> {owner}",
        toStatus: null);

    /// <summary>
    /// A new QR code (null clears it) of an active session; the same QR again changes nothing. A connected session
    /// never keeps a QR: a new one is refused until the runtime reports it is no longer connected.
    /// </summary>
    public static BotChangeRule SetQr(string? qrData) => new(
        requireActive: "update the QR code of",
        isNoOp: existing =>
        {
            if (qrData is not null && existing.Connection?.State == BotConnectionState.Connected)
            {
                throw new SessionConflictException(
                    $"Bot session '{existing.SessionId}' is connected; report 'reconnecting' or 'disconnected' before a new QR code.", "connected");
            }

            return string.Equals(existing.QrData, qrData, StringComparison.Ordinal);
        },
        AuditActions.BotQr,
        _ => qrData is null ? "qr cleared" : "qr updated",
        toStatus: null);

    /// <summary>
    /// A received message of an active session. Only forward: a message the runtime received before the stored one
    /// (<paramref name="receivedAt"/> older than its time) changes nothing; one without a time is stamped at commit.
    /// </summary>
    public static BotChangeRule RecordMessage(string text, DateTimeOffset? receivedAt) => new(
        requireActive: "record a message for",
        isNoOp: existing => receivedAt is { } at && existing.LastMessageAt is { } last && last > at,
        AuditActions.BotMessage,
        _ => string.Create(CultureInfo.InvariantCulture, $"{text.Length} characters"),
        toStatus: null);

    /// <summary>
    /// The runtime's connection state, checked by <see cref="BotConnectionStates.CheckTransition"/> on the state as it
    /// is now (an illegal step is refused); the same report again changes nothing. <paramref name="storedDetail"/> is
    /// the combined detail the row keeps (<see cref="BotLimits.ConnectionDetail"/>).
    /// </summary>
    public static BotChangeRule SetConnectionState(BotConnectionState state, string? reason, int? code, string? storedDetail) => new(
        requireActive: null,
        isNoOp: existing =>
        {
            if (BotConnectionStates.CheckTransition(existing.Connection?.State, state) is { } refused)
            {
                throw new SessionConflictException(refused, existing.Connection?.State.ToWire(), state.ToWire());
            }

            return existing.Connection is { } current && current.State == state
                && string.Equals(current.Reason, reason, StringComparison.Ordinal) && current.Code == code;
        },
        AuditActions.BotConnection,
        existing => $"{existing.Connection?.State.ToWire() ?? "none"} -> {storedDetail}",
        toStatus: null);

    /// <summary>A free-text connection detail; the same detail again changes nothing.</summary>
    public static BotChangeRule SetConnection(string? connectionDetail) => new(
        requireActive: null,
        isNoOp: existing => string.Equals(existing.ConnectionDetail, connectionDetail, StringComparison.Ordinal),
        AuditActions.BotConnection,
        existing => $"{existing.ConnectionDetail ?? "none"} -> {connectionDetail ?? "none"}",
        toStatus: null);

    /// <summary>Ends the session (<c>inactive</c>, QR cleared by the store's update); ending an inactive one changes nothing.</summary>
    public static BotChangeRule End() => new(
        requireActive: null,
        isNoOp: existing => existing.Status == BotSessionStatus.Inactive,
        AuditActions.BotEnded,
        _ => null,
        toStatus: BotSessionStatus.Inactive.ToWire());

    /// <summary>Stores (or, with null, clears) the encrypted login state; always written, the audit says only its size.</summary>
    public static BotChangeRule SaveAuthState(int? encryptedBytes) => new(
        requireActive: null,
        isNoOp: _ => false,
        AuditActions.BotAuthState,
        _ => encryptedBytes is { } length ? string.Create(CultureInfo.InvariantCulture, $"auth state stored ({length} bytes, encrypted)") : "auth state cleared",
        toStatus: null);
}
