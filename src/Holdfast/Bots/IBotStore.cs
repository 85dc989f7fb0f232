using Holdfast.Sessions;

namespace Holdfast.Bots;

/// <summary>
/// Where bot sessions are kept (the <c>bot_sessions</c> table). Every change writes one audit event in the same
/// transaction and increments <see cref="BotSession.Version"/>; concurrent changes of one session are serialised, so
/// none is lost. Repeating a change that already holds (same QR, ending an ended session) succeeds and changes
/// nothing. Invalid input throws <see cref="InvalidSessionInputException"/> before anything is written.
/// Implementations: <c>SqliteBotStore</c> (embedded default); the contract is one test suite for every provider.
/// </summary>
public interface IBotStore
{
    /// <summary>
    /// Looks the session up and reactivates it (status <c>active</c>, login state and last message kept) or creates
    /// it. Completes once the change and its audit event are committed. Throws
    /// <see cref="SessionConflictException"/> when the session is active as another bot type, and
    /// <see cref="BotIdUnavailableException"/> when <see cref="StartBotSession.Owner"/> is set and the stored session
    /// belongs to another owner or to none (a start never changes the owner; see <see cref="AssignOwnerAsync"/>).
    /// </summary>
    Task<BotStartResult> StartOrReactivateAsync(StartBotSession request, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="StartOrReactivateAsync(StartBotSession, Actor, CancellationToken)"/> that, when it creates or
    /// reactivates the session, also takes its lease for <paramref name="lease"/>'s node in the same transaction (epoch + 1;
    /// returned as <see cref="BotStartResult.Lease"/>), so no other node's takeover can claim a session between its start
    /// and its connect. An already active session is returned as it is, without a lease (claim it with
    /// <see cref="ClaimLeaseAsync"/>). Null <paramref name="lease"/>: no lease is taken.
    /// </summary>
    Task<BotStartResult> StartOrReactivateAsync(StartBotSession request, Actor actor, BotLeaseRequest? lease, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gives the session to <paramref name="owner"/> (an operator's explicit decision; audited as <c>bot.owner</c> with
    /// the previous owner). Completes once committed; assigning the current owner changes nothing. Throws
    /// <see cref="SessionNotFoundException"/> for an unknown session.
    /// </summary>
    Task<BotSession> AssignOwnerAsync(string sessionId, string owner, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores a new QR payload (null clears it) of an active session. Completes once committed. Throws
    /// <see cref="SessionNotFoundException"/>, or <see cref="SessionConflictException"/> when the session is inactive.
    /// </summary>
    Task<BotSession> SetQrAsync(string sessionId, string? qrData, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records a received message as the session's last message. Completes once committed. Throws
    /// <see cref="SessionNotFoundException"/>, or <see cref="SessionConflictException"/> when the session is inactive.
    /// </summary>
    Task<BotSession> RecordMessageAsync(string sessionId, string text, Actor actor, CancellationToken cancellationToken = default) =>
        RecordMessageAsync(sessionId, text, null, actor, cancellationToken);

    /// <summary>
    /// Records a message received at <paramref name="receivedAt"/> (null: now) as the last message, only forward: when
    /// the stored last message is newer, nothing changes (no version bump, no audit event) and the session is returned
    /// as it is. Completes once committed. Throws like <see cref="RecordMessageAsync(string, string, Actor, CancellationToken)"/>.
    /// </summary>
    Task<BotSession> RecordMessageAsync(string sessionId, string text, DateTimeOffset? receivedAt, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores a reported connection state with its reason and code (and a readable connection detail), checked by
    /// <see cref="BotConnectionStates.CheckTransition"/> inside the transaction; <c>connected</c> clears the QR, and a
    /// parked state (<c>failed</c>, <c>logged_out</c>) releases the lease (no node keeps a bot it does not run; a later
    /// start on any node claims it).
    /// Completes once committed with its audit event. Throws <see cref="SessionNotFoundException"/>, or
    /// <see cref="SessionConflictException"/> for a move the state machine refuses (nothing changed).
    /// </summary>
    Task<BotSession> SetConnectionStateAsync(string sessionId, BotConnectionState state, string? reason, int? code, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>Stores the connector's connection detail (e.g. <c>connected</c>). Completes once committed.</summary>
    Task<BotSession> SetConnectionAsync(string sessionId, string? connectionDetail, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>
    /// Ends the session: status <c>inactive</c>, QR cleared; the login state is kept so a later start reconnects
    /// without a new scan. Completes once committed; ending an inactive session changes nothing.
    /// </summary>
    Task<BotSession> EndAsync(string sessionId, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>The session, or null when there is none. Completes when read.</summary>
    Task<BotSession?> FindAsync(string sessionId, CancellationToken cancellationToken = default);

    /// <summary>One page of sessions ordered by id, filtered by status and owner. Completes when read.</summary>
    Task<BotPage> ListAsync(BotListQuery query, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores the session's login state as an opaque (already encrypted) blob; null clears it. Completes once
    /// committed. The audit event records only the size, never the content.
    /// </summary>
    Task<BotSession> SaveAuthStateAsync(string sessionId, ReadOnlyMemory<byte>? protectedState, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>The stored (encrypted) login state, or null. Throws <see cref="SessionNotFoundException"/> for an unknown session.</summary>
    Task<byte[]?> LoadAuthStateAsync(string sessionId, CancellationToken cancellationToken = default);

    // Writes by the node that holds the session's lease: fenced by it (null: not fenced, e.g. a bridge runtime's
    // report over HTTP, which may reach any node). A fence whose node or epoch is not the row's current lease throws
    // LeaseLostException and writes nothing.

    /// <summary>
    /// <see cref="SetQrAsync(string, string?, Actor, CancellationToken)"/> fenced by <paramref name="fence"/>: throws
    /// <see cref="LeaseLostException"/> (nothing written) when the session's lease is no longer that one.
    /// </summary>
    Task<BotSession> SetQrAsync(string sessionId, string? qrData, Actor actor, BotLease? fence, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="RecordMessageAsync(string, string, DateTimeOffset?, Actor, CancellationToken)"/> fenced by
    /// <paramref name="fence"/> (throws <see cref="LeaseLostException"/> when stale).
    /// </summary>
    Task<BotSession> RecordMessageAsync(string sessionId, string text, DateTimeOffset? receivedAt, Actor actor, BotLease? fence, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="SetConnectionStateAsync(string, BotConnectionState, string?, int?, Actor, CancellationToken)"/> fenced by
    /// <paramref name="fence"/> (throws <see cref="LeaseLostException"/> when stale).
    /// </summary>
    Task<BotSession> SetConnectionStateAsync(string sessionId, BotConnectionState state, string? reason, int? code, Actor actor, BotLease? fence, CancellationToken cancellationToken = default);

    /// <summary><see cref="SetConnectionAsync(string, string?, Actor, CancellationToken)"/> fenced by <paramref name="fence"/> (throws <see cref="LeaseLostException"/> when stale).</summary>
    Task<BotSession> SetConnectionAsync(string sessionId, string? connectionDetail, Actor actor, BotLease? fence, CancellationToken cancellationToken = default);

    /// <summary><see cref="SaveAuthStateAsync(string, ReadOnlyMemory{byte}?, Actor, CancellationToken)"/> fenced by <paramref name="fence"/> (throws <see cref="LeaseLostException"/> when stale).</summary>
    Task<BotSession> SaveAuthStateAsync(string sessionId, ReadOnlyMemory<byte>? protectedState, Actor actor, BotLease? fence, CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes the lease on active session <paramref name="sessionId"/> for <paramref name="nodeId"/> when nobody holds
    /// it, its lease expired, or <paramref name="nodeId"/> holds it already: holder = node, expiry = now +
    /// <paramref name="leaseDuration"/>, epoch + 1 (one conditional statement, so two nodes never both win). Returns the
    /// new lease, or null when another node holds a live lease or the session is not active.
    /// </summary>
    Task<BotLease?> ClaimLeaseAsync(string sessionId, string nodeId, TimeSpan leaseDuration, CancellationToken cancellationToken = default);

    /// <summary>
    /// Extends every lease <paramref name="nodeId"/> holds on an active session to now + <paramref name="leaseDuration"/>
    /// in one statement, and returns the leases it still holds: a session missing from the answer was taken over (or
    /// ended), and the node must drop its connection without writing.
    /// </summary>
    Task<IReadOnlyList<BotLease>> RenewLeasesAsync(string nodeId, TimeSpan leaseDuration, CancellationToken cancellationToken = default);

    /// <summary>
    /// Up to <paramref name="limit"/> active sessions that should be connected but are not held (no holder, or an
    /// expired lease, or a lease of <paramref name="nodeId"/> itself, e.g. after its restart), by id; parked sessions
    /// (<c>failed</c>, <c>logged_out</c>) are left out. Completes when read.
    /// </summary>
    Task<IReadOnlyList<string>> ListClaimableAsync(string nodeId, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// The bot load of the cluster, for each node's fair share of a takeover (<see cref="Generation.GenerationRules.ClaimShare"/>):
    /// the live nodes other than <paramref name="nodeId"/> (not stopped, heartbeat within <paramref name="liveWithin"/>),
    /// the active bot sessions they hold under a live lease, and those <paramref name="nodeId"/> holds. Completes when read.
    /// </summary>
    Task<Generation.ClaimLoad> ReadLeaseLoadAsync(string nodeId, TimeSpan liveWithin, CancellationToken cancellationToken = default);

    /// <summary>
    /// Lets go of every lease <paramref name="nodeId"/> holds (a graceful stop): holder and expiry cleared, so another
    /// node claims the sessions at once instead of after expiry. Returns the released session ids.
    /// </summary>
    Task<IReadOnlyList<string>> ReleaseLeasesAsync(string nodeId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores <paramref name="value"/> as store setting <paramref name="name"/> unless one is stored already, and returns
    /// the stored value (the first writer wins; concurrent first starts agree). Completes once committed.
    /// </summary>
    Task<string> EnsureSettingAsync(string name, string value, CancellationToken cancellationToken = default);
}
