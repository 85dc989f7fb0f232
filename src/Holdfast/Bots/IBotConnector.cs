using Holdfast.Sessions;

namespace Holdfast.Bots;

/// <summary>
/// Plugs a bot type into <see cref="BotManager"/>: the manager hands an active session to the connector of its
/// <see cref="BotSession.BotType"/> on start and on service restart, and takes it back on end. The connector reports
/// QR codes, received messages, connection changes and login state through <see cref="IBotSessionCallbacks"/>.
/// Register one with <c>services.AddHoldfastBotConnector&lt;T&gt;()</c>; bot type names are unique.
/// </summary>
public interface IBotConnector
{
    /// <summary>The bot type this connector serves, e.g. <c>web</c> or <c>bridge</c>.</summary>
    string BotType { get; }

    /// <summary>
    /// Connects <paramref name="session"/> (newly started, reactivated, or restored after a restart, with its stored
    /// QR and login state). Completes once the connector has taken the session over; long-running work continues in
    /// the background and reports through <paramref name="callbacks"/>.
    /// </summary>
    Task ConnectAsync(BotSession session, IBotSessionCallbacks callbacks, CancellationToken cancellationToken = default);

    /// <summary>Lets go of the session (it was ended). Completes once disconnected; unknown sessions are ignored.</summary>
    Task DisconnectAsync(string sessionId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Lets go of the session on this node only: it was not ended, another node runs it now (this node lost its lease,
    /// or handed it over on a graceful stop). Must not tell the bot runtime to end. Default: <see cref="DisconnectAsync"/>.
    /// </summary>
    Task ReleaseAsync(string sessionId, CancellationToken cancellationToken = default) => DisconnectAsync(sessionId, cancellationToken);

    /// <summary>
    /// True when <see cref="ConnectAsync"/> stores the session's QR or connection state before it completes (e.g.
    /// <c>web</c>): a start answered by a node that does not hold the session then waits for the holder's connect to
    /// show. False (the default) when the state comes later from elsewhere (e.g. <c>bridge</c>: from the bot runtime).
    /// </summary>
    bool ReportsOnConnect => false;
}

/// <summary>
/// What a connector (or a bot runtime over HTTP) reports about a session; implemented by <see cref="BotManager"/>.
/// </summary>
/// <remarks>
/// An interface with one implementation on purpose: it is the half of the connector plug-in point that connectors
/// call back into. A connector (built in, or a bot type added with <c>AddHoldfastBotConnector</c>) gets only what it
/// may report about the session it was handed, not the whole manager: it cannot start or end sessions (the manager
/// calls <see cref="IBotConnector.ConnectAsync"/> while it holds the session's start/end lock, so a connector that
/// started or ended a session from there would deadlock), and a connector can be tested against a recording fake
/// without a store. Every method validates its input and commits one change with its audit event.
/// </remarks>
public interface IBotSessionCallbacks
{
    /// <summary>Stores a new QR payload (null clears it). Completes once committed with its audit event.</summary>
    Task<BotSession> UpdateQrAsync(string sessionId, string? qrData, Actor? actor = null, CancellationToken cancellationToken = default);

    /// <summary>Records a received message as the last message. Completes once committed with its audit event.</summary>
    Task<BotSession> RecordMessageAsync(string sessionId, string text, Actor? actor = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reports the connection <paramref name="state"/> (a short word such as <c>connected</c>) with an optional
    /// <paramref name="detail"/>. Completes once committed.
    /// </summary>
    Task<BotSession> ReportConnectionAsync(string sessionId, string state, string? detail = null, Actor? actor = null, CancellationToken cancellationToken = default);

    /// <summary>Stores the login state, encrypted at rest (null clears it). Completes once committed.</summary>
    Task SaveAuthStateAsync(string sessionId, ReadOnlyMemory<byte>? state, Actor? actor = null, CancellationToken cancellationToken = default);

    /// <summary>The decrypted login state, or null when none is stored.</summary>
    Task<byte[]?> LoadAuthStateAsync(string sessionId, CancellationToken cancellationToken = default);
}
