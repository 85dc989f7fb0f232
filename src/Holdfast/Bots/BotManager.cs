using Holdfast.Generation;
using Holdfast.Sessions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Holdfast.Bots;

/// <summary>
/// Runs bot sessions: starts them (looks up the stored row, reactivates or creates it, then hands it to the connector
/// of its bot type), records what connectors and bot runtimes report (QR codes, messages, connection, login state),
/// ends them, and reconnects every active session after a restart. All state lives in the <see cref="IBotStore"/>;
/// every change is one audit event. Usage: <c>await botManager.StartSessionAsync(new("bot1"));</c>
/// </summary>
public sealed class BotManager : IBotSessionCallbacks, IDisposable
{
    private static readonly Actor DefaultActor = Actor.System("bots");

    private readonly IBotStore _store;
    private readonly IBotAuthKeyStore? _authKeys;
    private readonly BotAuthStateProtector _protector;
    private readonly Dictionary<string, IBotConnector> _connectors;
    private readonly ILogger _logger;
    private readonly SessionChanges? _changes;
    private readonly Storage.IChangeSignals? _signals;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, HeldConnection> _connected = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _missingConnectorLogged = new(StringComparer.Ordinal);
    private readonly TimeSpan _leaseDuration;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _deferredSince = new(StringComparer.Ordinal);
    private long _claimSeq;

    /// <summary>How long a start answered by a node that does not hold the session waits for the holder's connect.</summary>
    internal static readonly TimeSpan HolderConnectWait = TimeSpan.FromSeconds(5);

    // Start, end and restore of one session are serialised (striped by id) so a session is never connected twice.
    private readonly SemaphoreSlim[] _sessionLocks = Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1)).ToArray();

    public BotManager(
        IBotStore store,
        IEnumerable<IBotConnector> connectors,
        BotAuthStateProtector protector,
        ILogger<BotManager>? logger = null,
        SessionChanges? changes = null)
        : this(store, connectors, protector, null, null, logger, changes)
    {
    }

    public BotManager(
        IBotStore store,
        IEnumerable<IBotConnector> connectors,
        BotAuthStateProtector protector,
        IBotAuthKeyStore? authKeys,
        TimeProvider? time,
        ILogger<BotManager>? logger = null,
        SessionChanges? changes = null,
        Storage.IChangeSignals? signals = null,
        Cluster.NodeIdentity? identity = null,
        Microsoft.Extensions.Options.IOptions<Cluster.ClusterOptions>? cluster = null)
    {
        Time = time ?? TimeProvider.System;
        NodeId = identity?.NodeId ?? Environment.MachineName;
        _leaseDuration = cluster?.Value.LeaseDuration ?? new Cluster.ClusterOptions().LeaseDuration;
        _signals = signals;
        StartedAt = Time.GetUtcNow();
        _store = store;
        _authKeys = authKeys;
        _changes = changes;
        _protector = protector;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _connectors = new Dictionary<string, IBotConnector>(StringComparer.Ordinal);
        foreach (var connector in connectors)
        {
            if (!_connectors.TryAdd(connector.BotType, connector))
            {
                throw new InvalidOperationException(
                    $"Two bot connectors serve bot type '{connector.BotType}': {_connectors[connector.BotType].GetType().Name} and {connector.GetType().Name}.");
            }
        }
    }

    /// <summary>This node's id: the holder recorded on the leases of the bot sessions whose connection runs here.</summary>
    public string NodeId { get; }

    /// <summary>When this manager (the service) started: a QR stored before it counts as expired.</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>The clock of QR expiry and restore waits.</summary>
    public TimeProvider Time { get; }

    /// <summary>The bot types a connector is registered for (e.g. <c>web</c>, <c>bridge</c>).</summary>
    public IReadOnlyCollection<string> BotTypes => _connectors.Keys;

    /// <summary>
    /// Starts bot session <paramref name="request"/>: reactivates the stored session (keeping its login state and last
    /// message) or creates it, then hands it to the connector of its bot type. Completes once the change is committed
    /// and the connector has taken the session (for <c>web</c>: its QR pairing link is stored). Starting an active
    /// session changes nothing (it is reconnected if no node holds its lease, e.g. after a failed connect; a session whose lease
    /// another live node holds stays connected there). Throws
    /// <see cref="InvalidSessionInputException"/> for a bad id or an unknown bot type (nothing changed) and
    /// <see cref="SessionConflictException"/> when the id is active as another bot type, and
    /// <see cref="BotIdUnavailableException"/> when <see cref="StartBotSession.Owner"/> is set and the session belongs
    /// to another owner or to none.
    /// </summary>
    public async Task<BotStartResult> StartSessionAsync(StartBotSession request, Actor? actor = null, CancellationToken cancellationToken = default)
    {
        BotLimits.ValidateStart(request);
        var connector = GetConnector(request.BotType);
        var gate = LockFor(request.SessionId);
        BotStartResult heldElsewhere;
        await gate.WaitAsync(cancellationToken);
        try
        {
            // A start that creates or reactivates the session takes its lease in the same transaction: no other node's
            // takeover can claim it between the start and the connect (the start would then answer without the QR).
            var result = await _store.StartOrReactivateAsync(request, actor ?? DefaultActor, new BotLeaseRequest(NodeId, _leaseDuration), cancellationToken);
            Log.BotSessionStarted(_logger, request.SessionId, request.BotType, result.Outcome);
            if (result.Outcome == BotStartOutcome.AlreadyActive && _connected.ContainsKey(request.SessionId))
            {
                return result;
            }

            // Exactly one node runs a bot's connection: the one that holds its lease.
            if ((result.Lease ?? await ClaimAsync(request.SessionId, cancellationToken)) is { } lease)
            {
                try
                {
                    await ConnectAsync(connector, result.Session, lease, cancellationToken);
                }
                finally
                {
                    Changed(request.SessionId);
                }

                var current = await _store.FindAsync(request.SessionId, cancellationToken) ?? result.Session;
                return result with { Session = current };
            }

            Log.BotHeldElsewhere(_logger, request.SessionId);
            heldElsewhere = result;
        }
        finally
        {
            gate.Release();
        }

        // Outside the lock: this node's ends and restores of other sessions on the same stripe do not wait for it.
        return heldElsewhere with { Session = await WaitForHolderAsync(connector, request.SessionId, cancellationToken) ?? heldElsewhere.Session };
    }

    /// <summary>
    /// Ends the session: status <c>inactive</c>, QR cleared, then its connector lets go of it. Completes once the end
    /// is committed and the connector was told. Ending an ended session changes nothing. Throws
    /// <see cref="SessionNotFoundException"/> for an unknown session.
    /// </summary>
    public async Task<BotSession> EndSessionAsync(string sessionId, Actor? actor = null, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        var gate = LockFor(sessionId);
        await gate.WaitAsync(cancellationToken);
        try
        {
            var ended = await _store.EndAsync(sessionId, actor ?? DefaultActor, cancellationToken);
            Changed(sessionId);
            Log.BotSessionEnded(_logger, sessionId);
            _connected.TryRemove(sessionId, out _);
            if (_connectors.TryGetValue(ended.BotType, out var connector))
            {
                try
                {
                    await connector.DisconnectAsync(sessionId, cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.BotDisconnectFailed(_logger, ex, sessionId, ended.BotType);
                }
            }

            return ended;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Gives session <paramref name="sessionId"/> to user <paramref name="owner"/> (an operator's decision, audited as
    /// <c>bot.owner</c>). Completes once committed. Throws <see cref="SessionNotFoundException"/> for an unknown session
    /// and <see cref="InvalidSessionInputException"/> for an invalid user name.
    /// </summary>
    public async Task<BotSession> AssignOwnerAsync(string sessionId, string owner, Actor? actor = null, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        SessionIds.Validate(owner, "owner");
        return Changed(await _store.AssignOwnerAsync(sessionId, owner, actor ?? DefaultActor, cancellationToken));
    }

    /// <summary>The session; throws <see cref="SessionNotFoundException"/> when there is none.</summary>
    public async Task<BotSession> GetAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        return await _store.FindAsync(sessionId, cancellationToken) ?? throw new SessionNotFoundException(SessionKind.Bot, sessionId);
    }

    /// <summary>The session, or null when there is none.</summary>
    public Task<BotSession?> FindAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        return _store.FindAsync(sessionId, cancellationToken);
    }

    /// <summary>One page of sessions ordered by id (filter by status and owner; page with <see cref="BotPage.NextCursor"/>).</summary>
    public Task<BotPage> ListAsync(BotListQuery? query = null, CancellationToken cancellationToken = default) =>
        _store.ListAsync(BotLimits.ValidateList(query), cancellationToken);

    /// <summary>True when a connector in this process holds the session.</summary>
    public bool IsConnected(string sessionId) => _connected.ContainsKey(sessionId);

    /// <inheritdoc />
    public Task<BotSession> UpdateQrAsync(string sessionId, string? qrData, Actor? actor = null, CancellationToken cancellationToken = default) =>
        UpdateQrAsync(sessionId, qrData, actor, null, cancellationToken);

    private async Task<BotSession> UpdateQrAsync(string sessionId, string? qrData, Actor? actor, BotLease? fence, CancellationToken cancellationToken)
    {
        SessionIds.Validate(sessionId);
        BotLimits.ValidateQr(qrData);
        return Changed(await _store.SetQrAsync(sessionId, qrData, actor ?? DefaultActor, fence, cancellationToken));
    }

    /// <inheritdoc />
    public Task<BotSession> RecordMessageAsync(string sessionId, string text, Actor? actor = null, CancellationToken cancellationToken = default) =>
        RecordMessageAsync(sessionId, text, null, actor, cancellationToken);

    /// <summary>
    /// Records a message the runtime received at <paramref name="receivedAt"/> (null: now). Only forward: a message
    /// older than the stored last message changes nothing. Completes once committed with its audit event.
    /// </summary>
    public Task<BotSession> RecordMessageAsync(string sessionId, string text, DateTimeOffset? receivedAt, Actor? actor = null, CancellationToken cancellationToken = default) =>
        RecordMessageAsync(sessionId, text, receivedAt, actor, null, cancellationToken);

    private async Task<BotSession> RecordMessageAsync(string sessionId, string text, DateTimeOffset? receivedAt, Actor? actor, BotLease? fence, CancellationToken cancellationToken)
    {
        SessionIds.Validate(sessionId);
        BotLimits.ValidateMessage(text);
        return Changed(await _store.RecordMessageAsync(sessionId, text, receivedAt, actor ?? DefaultActor, fence, cancellationToken));
    }

    /// <inheritdoc />
    public Task<BotSession> ReportConnectionAsync(string sessionId, string state, string? detail = null, Actor? actor = null, CancellationToken cancellationToken = default) =>
        ReportConnectionAsync(sessionId, ParseConnectionState(state), detail, null, actor, cancellationToken);

    /// <summary>
    /// Reports connection <paramref name="state"/> with an optional <paramref name="reason"/> and disconnect
    /// <paramref name="code"/>. The state machine (<see cref="BotConnectionStates.CheckTransition"/>) is applied to the
    /// stored state inside the write; <c>connected</c> clears the QR. Completes once committed. Throws
    /// <see cref="SessionConflictException"/> for a refused move and <see cref="InvalidSessionInputException"/> for a
    /// reason over the limit; nothing changes then.
    /// </summary>
    public Task<BotSession> ReportConnectionAsync(string sessionId, BotConnectionState state, string? reason, int? code, Actor? actor = null, CancellationToken cancellationToken = default) =>
        ReportConnectionAsync(sessionId, state, reason, code, actor, null, cancellationToken);

    private async Task<BotSession> ReportConnectionAsync(string sessionId, BotConnectionState state, string? reason, int? code, Actor? actor, BotLease? fence, CancellationToken cancellationToken)
    {
        SessionIds.Validate(sessionId);
        BotLimits.ValidateConnectionDetail(BotLimits.ConnectionDetail(state.ToWire(), reason, code));
        return Changed(await _store.SetConnectionStateAsync(sessionId, state, string.IsNullOrEmpty(reason) ? null : reason, code, actor ?? DefaultActor, fence, cancellationToken));
    }

    /// <summary>A connection state from its wire name, or <see cref="InvalidSessionInputException"/> naming the valid ones.</summary>
    public static BotConnectionState ParseConnectionState(string? state) =>
        BotConnectionStates.TryParse(state, out var parsed)
            ? parsed
            : throw new InvalidSessionInputException("state", $"'state' must be one of {string.Join(", ", BotConnectionStates.WireNames)}.");

    /// <inheritdoc />
    public Task SaveAuthStateAsync(string sessionId, ReadOnlyMemory<byte>? state, Actor? actor = null, CancellationToken cancellationToken = default) =>
        SaveAuthStateAsync(sessionId, state, actor, null, cancellationToken);

    private async Task SaveAuthStateAsync(string sessionId, ReadOnlyMemory<byte>? state, Actor? actor, BotLease? fence, CancellationToken cancellationToken)
    {
        SessionIds.Validate(sessionId);
        ReadOnlyMemory<byte>? blob = null;
        if (state is { } plaintext)
        {
            BotLimits.ValidateAuthState(plaintext.Length);
            blob = _protector.Protect(sessionId, plaintext.Span);
        }

        await _store.SaveAuthStateAsync(sessionId, blob, actor ?? DefaultActor, fence, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<byte[]?> LoadAuthStateAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        var blob = await _store.LoadAuthStateAsync(sessionId, cancellationToken);
        return blob is null ? null : _protector.Unprotect(sessionId, blob);
    }

    /// <summary>
    /// Reads per-key login state: the plaintext values of <paramref name="keyType"/> among <paramref name="keyIds"/>
    /// (absent ids are left out). Throws <see cref="SessionNotFoundException"/> for an unknown session and
    /// <see cref="InvalidSessionInputException"/> for a bad type or id.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, byte[]>> ReadAuthKeysAsync(string sessionId, string keyType, IReadOnlyCollection<string> keyIds, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        ArgumentNullException.ThrowIfNull(keyIds);
        BotLimits.ValidateAuthKeyCount(keyIds.Count);
        foreach (var keyId in keyIds)
        {
            BotLimits.ValidateAuthKey(keyType, keyId);
        }

        var stored = await AuthKeys.ReadAuthKeysAsync(sessionId, keyType, keyIds, cancellationToken);
        return stored.ToDictionary(e => e.Key, e => _protector.Unprotect(AuthKeyContext(sessionId, keyType, e.Key), e.Value), StringComparer.Ordinal);
    }

    /// <summary>
    /// Writes per-key login state in one transaction: each value (plaintext) is encrypted and stored, null deletes
    /// the key. Completes once committed with one audit event (counts only). Invalid input changes nothing.
    /// </summary>
    public Task WriteAuthKeysAsync(string sessionId, IReadOnlyList<BotAuthKeyChange> changes, Actor? actor = null, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        ArgumentNullException.ThrowIfNull(changes);
        BotLimits.ValidateAuthKeyCount(changes.Count);
        var protectedChanges = new List<BotAuthKeyChange>(changes.Count);
        foreach (var change in changes)
        {
            BotLimits.ValidateAuthKey(change.KeyType, change.KeyId);
            if (change.Value is { } value)
            {
                BotLimits.ValidateAuthKeyValue(value.Length);
            }

            protectedChanges.Add(change.Value is null
                ? change
                : change with { Value = _protector.Protect(AuthKeyContext(sessionId, change.KeyType, change.KeyId), change.Value) });
        }

        return AuthKeys.WriteAuthKeysAsync(sessionId, protectedChanges, actor ?? DefaultActor, cancellationToken);
    }

    /// <summary>
    /// Links a browser to a <c>web</c> session through the token of its current QR pairing link: stores the new
    /// device's key (hashed, in the encrypted login state), clears the QR and reports <c>connected</c>. Returns the
    /// device key the browser keeps to send messages (<see cref="VerifyWebDeviceAsync"/>). Throws
    /// <see cref="InvalidSessionInputException"/> when the token does not match the session's current QR (nothing changed).
    /// </summary>
    public async Task<string> PairWebDeviceAsync(string sessionId, string? token, Actor? actor = null, CancellationToken cancellationToken = default)
    {
        var session = await GetAsync(sessionId, cancellationToken);
        if (!WebBotConnector.VerifyPairingToken(session, token))
        {
            throw new InvalidSessionInputException("token", "This pairing link is not valid (any more): scan the QR code the session shows now.");
        }

        var deviceKey = WebBotConnector.NewToken();
        actor ??= Actor.System("connector:web");
        await SaveAuthStateAsync(sessionId, WebBotConnector.DeviceAuthState(deviceKey), actor, cancellationToken);
        await UpdateQrAsync(sessionId, null, actor, cancellationToken);
        await ReportConnectionAsync(sessionId, "connected", WebBotConnector.PairedDetail, actor, cancellationToken);
        Log.BotWebDevicePaired(_logger, sessionId);
        return deviceKey;
    }

    /// <summary>True when <paramref name="deviceKey"/> is the key of the browser paired with active <c>web</c> session <paramref name="sessionId"/>.</summary>
    public async Task<bool> VerifyWebDeviceAsync(string sessionId, string? deviceKey, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(deviceKey) || !SessionIds.IsValid(sessionId))
        {
            return false;
        }

        var session = await _store.FindAsync(sessionId, cancellationToken);
        if (session is not { Status: BotSessionStatus.Active, BotType: WebBotConnector.TypeName })
        {
            return false;
        }

        var state = await LoadAuthStateAsync(sessionId, cancellationToken);
        return state is not null && WebBotConnector.VerifyDeviceKey(state, deviceKey);
    }

    /// <summary>
    /// Hands every <c>active</c> session back to its connector, one at a time with no retry (see the overload with
    /// <see cref="BotOptions"/> for the gentle restore on service start). Completes when every session was tried;
    /// returns how many were reconnected.
    /// </summary>
    public Task<int> RestoreActiveSessionsAsync(CancellationToken cancellationToken = default) =>
        RestoreActiveSessionsAsync(new BotOptions { RestoreConcurrency = 1, RestoreJitter = TimeSpan.Zero, RestoreAttempts = 1 }, cancellationToken);

    /// <summary>
    /// Hands every <c>active</c> session back to its connector (used on service start by <c>BotRestoreService</c>):
    /// at most <see cref="BotOptions.RestoreConcurrency"/> at once, each after a random wait of up to
    /// <see cref="BotOptions.RestoreJitter"/>. Sessions whose connector failed are tried again in rounds, up to
    /// <see cref="BotOptions.RestoreAttempts"/> attempts, waiting <see cref="BotOptions.RestoreBackoff"/> (doubling, at
    /// most <see cref="BotOptions.RestoreMaxBackoff"/>) between rounds; then they are left active and unconnected,
    /// with the failure on the session, for a manual start. Nothing is deleted. Completes when every session was
    /// tried; returns how many were reconnected.
    /// </summary>
    public async Task<int> RestoreActiveSessionsAsync(BotOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var pending = new List<BotSession>();
        string? cursor = null;
        do
        {
            var page = await _store.ListAsync(new BotListQuery(BotSessionStatus.Active, After: cursor, Limit: BotLimits.MaxPageSize), cancellationToken);
            pending.AddRange(page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);

        Log.BotRestoreStarting(_logger, pending.Count);
        return await RestoreAsync(pending, options, cancellationToken);
    }

    /// <summary>
    /// Takes over the active sessions no live node holds (their holder died or stopped: the lease expired or was
    /// released), each by claiming its lease first, so every bot is restored by exactly one node; restored like on
    /// start (<see cref="RestoreActiveSessionsAsync(BotOptions, CancellationToken)"/>: bounded, jittered, retried).
    /// Completes when each was tried; returns how many this node now runs.
    /// </summary>
    public async Task<int> TakeOverAbandonedAsync(BotOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var pending = new List<BotSession>();
        var claimable = await _store.ListClaimableAsync(NodeId, BotLimits.MaxPageSize, cancellationToken);
        foreach (var id in claimable)
        {
            if (!_connected.ContainsKey(id) && await _store.FindAsync(id, cancellationToken) is { } session)
            {
                pending.Add(session);
            }
        }

        foreach (var id in _deferredSince.Keys.Except(pending.Select(p => p.SessionId), StringComparer.Ordinal))
        {
            _deferredSince.TryRemove(id, out _);
        }

        if (pending.Count == 0)
        {
            return 0;
        }

        // Several live nodes: take no more than this node's fair share, like generation takeover
        // (GenerationRules.ClaimShare): the bots of a dead node are spread over the survivors. What this node holds is
        // what it runs (a lease of its own from before a restart is offered, not held). A bot left over for a whole
        // lease duration is taken by whichever node sees it, so none waits for good on a node that cannot take it.
        var load = await _store.ReadLeaseLoadAsync(NodeId, _leaseDuration, cancellationToken);
        var budget = load.OtherLiveNodes > 0
            ? new ClaimBudget(GenerationRules.ClaimShare(load with { HeldByNode = _connected.Count }, pending.Count), Time.GetUtcNow() - _leaseDuration, _deferredSince)
            : null;

        // In random order, so survivors taking their shares at once rarely reach for the same bot.
        var shuffled = pending.ToArray();
        Random.Shared.Shuffle(shuffled);
        var restored = await RestoreAsync([.. shuffled], options, cancellationToken, budget);
        if (budget is not null)
        {
            var now = Time.GetUtcNow();
            foreach (var id in budget.Deferred)
            {
                _deferredSince.TryAdd(id, now);
            }
        }

        if (restored > 0)
        {
            Log.BotsTakenOver(_logger, restored, NodeId);
        }

        return restored;
    }

    /// <summary>
    /// Renews every bot lease this node holds, in one statement, and drops (without a word to the runtime, and without
    /// writing) each connection whose lease is gone: taken over by another node while this one was paused, or ended.
    /// Returns the dropped session ids.
    /// </summary>
    public async Task<IReadOnlyList<string>> RenewLeasesAsync(CancellationToken cancellationToken = default)
    {
        // A lease claimed after this point may commit after the renewal statement read the rows: it is left alone.
        var claimedBefore = Interlocked.Read(ref _claimSeq);
        var held = (await _store.RenewLeasesAsync(NodeId, _leaseDuration, cancellationToken)).ToDictionary(l => l.SessionId, l => l.Epoch, StringComparer.Ordinal);
        var dropped = new List<string>();
        foreach (var (id, connection) in _connected)
        {
            if (connection.ClaimSeq > claimedBefore || (held.TryGetValue(id, out var epoch) && epoch == connection.Lease.Epoch))
            {
                continue;
            }

            if (await DropAsync(id, connection, cancellationToken))
            {
                Log.BotLeaseLost(_logger, id, connection.Lease.Epoch);
                dropped.Add(id);
            }
        }

        return dropped;
    }

    /// <summary>
    /// A graceful stop: lets go of every connection this node runs (without ending the sessions) and releases their
    /// leases, so another node takes them over at once instead of after the lease expires. Completes once released.
    /// </summary>
    public async Task HandOverAsync(CancellationToken cancellationToken = default)
    {
        foreach (var (id, connection) in _connected)
        {
            await DropAsync(id, connection, cancellationToken);
        }

        var released = await _store.ReleaseLeasesAsync(NodeId, cancellationToken);
        if (released.Count > 0)
        {
            Log.BotsHandedOver(_logger, released.Count, NodeId);

            // Other nodes wake and take them over now (LISTEN/NOTIFY on PostgreSQL).
            BotSignals.Publish(_signals, BotSignals.Leases);
        }
    }

    /// <summary>The lease this node holds on the session (its connection runs here), or null.</summary>
    public BotLease? HeldLease(string sessionId) => _connected.TryGetValue(sessionId, out var connection) ? connection.Lease : null;

    /// <summary>
    /// Checks that this node encrypts login state with the same key as every other node of the store: the key's
    /// fingerprint is stored by the first start; a node with another key gets <see cref="BotAuthKeyMismatchException"/>
    /// naming <c>Bots:AuthStateKey</c> (nothing written). Completes once checked.
    /// </summary>
    public async Task EnsureAuthKeyMatchesStoreAsync(CancellationToken cancellationToken = default)
    {
        var mine = _protector.KeyFingerprint;
        var stored = await _store.EnsureSettingAsync(BotStoreSettings.AuthKeyFingerprint, mine, cancellationToken);
        if (!string.Equals(stored, mine, StringComparison.Ordinal))
        {
            throw new BotAuthKeyMismatchException(stored, mine);
        }
    }

    private async Task<bool> DropAsync(string id, HeldConnection connection, CancellationToken cancellationToken)
    {
        var gate = LockFor(id);
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (!_connected.TryRemove(new KeyValuePair<string, HeldConnection>(id, connection)))
            {
                return false;
            }

            if (_connectors.TryGetValue(connection.BotType, out var connector))
            {
                try
                {
                    await connector.ReleaseAsync(id, cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.BotDisconnectFailed(_logger, ex, id, connection.BotType);
                }
            }

            Changed(id);
            return true;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// The session as another node holds it, for a start answered here. When its connector stores the QR or the
    /// connection state on connect (<see cref="IBotConnector.ReportsOnConnect"/>) and the holder has not shown its
    /// connect yet (state <c>starting</c>, no connection detail: it took the session over just now), waits for it, at
    /// most <see cref="HolderConnectWait"/>, then answers 409 (retry) instead of a session without its QR.
    /// </summary>
    private async Task<BotSession?> WaitForHolderAsync(IBotConnector connector, string sessionId, CancellationToken cancellationToken)
    {
        using var changes = connector.ReportsOnConnect ? _signals?.Subscribe(BotSignals.Session(sessionId)) : null;
        var deadline = Time.GetTimestamp() + (long)(HolderConnectWait.TotalSeconds * Time.TimestampFrequency);
        while (true)
        {
            var session = await _store.FindAsync(sessionId, cancellationToken);
            if (!connector.ReportsOnConnect || !AwaitsHolderConnect(session))
            {
                return session;
            }

            var left = TimeSpan.FromSeconds((deadline - Time.GetTimestamp()) / (double)Time.TimestampFrequency);
            if (left <= TimeSpan.Zero)
            {
                throw new SessionConflictException(
                    $"Bot session '{sessionId}' is being connected by node '{session!.Holder?.NodeId}', which took it over just now; start it again in a moment.");
            }

            // Signals are hints (and absent without a shared store): re-read at least every 250 ms.
            using var wait = new CancellationTokenSource(TimeSpan.FromTicks(Math.Min(left.Ticks, TimeSpan.FromMilliseconds(250).Ticks)), Time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, wait.Token);
            try
            {
                await (changes?.WaitAsync(linked.Token) ?? Task.Delay(Timeout.InfiniteTimeSpan, Time, linked.Token));
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Re-read.
            }
        }
    }

    /// <summary>True while a held, active session shows nothing of its holder's connect yet.</summary>
    private static bool AwaitsHolderConnect(BotSession? session) =>
        session is { Status: BotSessionStatus.Active, Holder: not null, ConnectionDetail: null }
        && session.Connection?.State is null or BotConnectionState.Starting;

    private async Task<BotLease?> ClaimAsync(string sessionId, CancellationToken cancellationToken)
    {
        var lease = await _store.ClaimLeaseAsync(sessionId, NodeId, _leaseDuration, cancellationToken);
        return lease;
    }

    private async Task<int> RestoreAsync(List<BotSession> pending, BotOptions options, CancellationToken cancellationToken, ClaimBudget? budget = null)
    {
        var restored = 0;
        var backoff = options.RestoreBackoff;
        for (var attempt = 1; pending.Count > 0; attempt++)
        {
            var failed = new System.Collections.Concurrent.ConcurrentBag<BotSession>();
            await Parallel.ForEachAsync(
                pending,
                new ParallelOptions { MaxDegreeOfParallelism = options.RestoreConcurrency, CancellationToken = cancellationToken },
                async (session, token) =>
                {
                    if (options.RestoreJitter > TimeSpan.Zero)
                    {
                        await Task.Delay(TimeSpan.FromTicks(Random.Shared.NextInt64(options.RestoreJitter.Ticks + 1)), Time, token);
                    }

                    switch (await RestoreOneAsync(session, budget, token))
                    {
                        case RestoreOutcome.Restored:
                            Interlocked.Increment(ref restored);
                            break;
                        case RestoreOutcome.Failed:
                            failed.Add(session);
                            break;
                    }
                });

            if (failed.IsEmpty)
            {
                break;
            }

            if (attempt >= options.RestoreAttempts)
            {
                await ParkAsync(failed, attempt, cancellationToken);
                break;
            }

            pending = failed.OrderBy(s => s.SessionId, StringComparer.Ordinal).ToList();
            Log.BotRestoreRetrying(_logger, pending.Count, attempt + 1, backoff);
            await Task.Delay(backoff, Time, cancellationToken);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, options.RestoreMaxBackoff.Ticks));
        }

        return restored;
    }

    /// <summary>
    /// Parks sessions that kept failing to reconnect as <c>failed</c> (kept, not deleted; restore skips them until a
    /// manual start), so a broken session does not loop on every start.
    /// </summary>
    private async Task ParkAsync(IEnumerable<BotSession> sessions, int attempts, CancellationToken cancellationToken)
    {
        foreach (var session in sessions)
        {
            try
            {
                await _store.SetConnectionStateAsync(
                    session.SessionId,
                    BotConnectionState.Failed,
                    string.Create(System.Globalization.CultureInfo.InvariantCulture, $"restore: connecting failed {attempts} times; start it again to retry"),
                    null,
                    Actor.System("bots"),
                    cancellationToken);
                Changed(session.SessionId);
                Log.BotParked(_logger, session.SessionId, attempts);
            }
            catch (HoldfastException ex)
            {
                Log.BotRestoreFailed(_logger, ex, session.SessionId);
            }
        }
    }

    private enum RestoreOutcome
    {
        Restored,
        Skipped,
        Failed,
    }

    private async Task<RestoreOutcome> RestoreOneAsync(BotSession session, ClaimBudget? budget, CancellationToken cancellationToken)
    {
        if (!_connectors.TryGetValue(session.BotType, out var connector))
        {
            if (_missingConnectorLogged.TryAdd(session.SessionId, 0))
            {
                Log.BotConnectorMissing(_logger, session.SessionId, session.BotType);
            }

            return RestoreOutcome.Skipped;
        }

        var gate = LockFor(session.SessionId);
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (_connected.ContainsKey(session.SessionId))
            {
                return RestoreOutcome.Skipped;
            }

            var current = await _store.FindAsync(session.SessionId, cancellationToken);
            if (current is not { Status: BotSessionStatus.Active } || !BotConnectionStates.IsRestorable(current.Connection?.State))
            {
                // Ended meanwhile, or parked (failed, logged out): only a manual start reconnects it.
                return RestoreOutcome.Skipped;
            }

            // Beyond this node's share of a takeover: left to the other live nodes (taken next time if they do not).
            if (budget is not null && !budget.TryTake(session.SessionId))
            {
                return RestoreOutcome.Skipped;
            }

            // Held by another live node: it runs the connection (each bot by exactly one node).
            if (await ClaimAsync(session.SessionId, cancellationToken) is not { } lease)
            {
                budget?.GiveBack(session.SessionId);
                return RestoreOutcome.Skipped;
            }

            await ConnectAsync(connector, current, lease, cancellationToken);
            Changed(session.SessionId);
            Log.BotRestored(_logger, session.SessionId, session.BotType);
            return RestoreOutcome.Restored;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.BotRestoreFailed(_logger, ex, session.SessionId);
            return RestoreOutcome.Failed;
        }
        finally
        {
            gate.Release();
        }
    }

    public void Dispose()
    {
        foreach (var gate in _sessionLocks)
        {
            gate.Dispose();
        }
    }

    private async Task ConnectAsync(IBotConnector connector, BotSession session, BotLease lease, CancellationToken cancellationToken)
    {
        try
        {
            // The connector's writes carry the lease: once another node took the session over, they are refused.
            await connector.ConnectAsync(session with { Holder = new Cluster.LeaseHolder(lease.NodeId, lease.Epoch, lease.ExpiresAt) }, new HolderCallbacks(this, lease), cancellationToken);
            _connected[session.SessionId] = new HeldConnection(connector.BotType, lease, Interlocked.Increment(ref _claimSeq));
        }
        catch (Exception ex) when (ex is not OperationCanceledException && ex is not HoldfastException)
        {
            Log.BotConnectFailed(_logger, ex, session.SessionId, connector.BotType);

            // Visible on the session (dashboard, API); the exception's type only, its message stays in the log.
            await _store.SetConnectionAsync(session.SessionId, $"connect_failed: {ex.GetType().Name}", Actor.System("bots"), lease, CancellationToken.None);
            throw;
        }
    }

    // Each value is bound to its session, type and id: a blob copied to another key does not decrypt.
    private static string AuthKeyContext(string sessionId, string keyType, string keyId) => $"{sessionId}\n{keyType}\n{keyId}";

    private IBotAuthKeyStore AuthKeys =>
        _authKeys ?? throw new InvalidOperationException("No IBotAuthKeyStore is registered: per-key login state is not available.");

    /// <summary>Signals live views (the dashboard) that the session changed.</summary>
    private BotSession Changed(BotSession session)
    {
        Changed(session.SessionId);
        return session;
    }

    private void Changed(string sessionId)
    {
        _changes?.Notify(new SessionChange(SessionKind.Bot, sessionId));

        // Every node (LISTEN/NOTIFY on PostgreSQL) hears it: QR long polls and command streams wake and re-read.
        BotSignals.Publish(_signals, BotSignals.Session(sessionId));
    }

    private IBotConnector GetConnector(string botType) =>
        _connectors.TryGetValue(botType, out var connector)
            ? connector
            : throw new InvalidSessionInputException(
                "bot_type",
                $"Unknown bot type '{botType}'; this service knows: {string.Join(", ", _connectors.Keys.Order(StringComparer.Ordinal))}.");

    private SemaphoreSlim LockFor(string sessionId) =>
        _sessionLocks[(int)((uint)StringComparer.Ordinal.GetHashCode(sessionId) % (uint)_sessionLocks.Length)];

    /// <summary>
    /// This node's share of one takeover: how many bots it may still claim, and which it left to the others. A bot left
    /// over since before <c>overdueBefore</c> (deferred by this node a lease duration ago) is taken regardless.
    /// </summary>
    private sealed class ClaimBudget(int share, DateTimeOffset overdueBefore, System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> deferredSince)
    {
        private readonly Lock _gate = new();
        private readonly HashSet<string> _deferred = new(StringComparer.Ordinal);
        private readonly HashSet<string> _taken = new(StringComparer.Ordinal);
        private int _left = share;

        public IReadOnlyCollection<string> Deferred
        {
            get
            {
                lock (_gate)
                {
                    return [.. _deferred];
                }
            }
        }

        public bool TryTake(string sessionId)
        {
            lock (_gate)
            {
                if (_taken.Contains(sessionId))
                {
                    return true; // A retry round of a bot this node claimed already.
                }

                if (_left > 0 || (deferredSince.TryGetValue(sessionId, out var since) && since <= overdueBefore))
                {
                    _left--;
                    _taken.Add(sessionId);
                    _deferred.Remove(sessionId);
                    return true;
                }

                _deferred.Add(sessionId);
                return false;
            }
        }

        public void GiveBack(string sessionId)
        {
            lock (_gate)
            {
                if (_taken.Remove(sessionId))
                {
                    _left++;
                }
            }
        }
    }

    /// <summary>A connection this node runs: the connector's bot type, its lease, and when (in claim order) it was taken.</summary>
    private sealed record HeldConnection(string BotType, BotLease Lease, long ClaimSeq);

    /// <summary>What a connector reports through: the manager's writes, each fenced by the lease it was connected under.</summary>
    private sealed class HolderCallbacks(BotManager manager, BotLease lease) : IBotSessionCallbacks
    {
        public Task<BotSession> UpdateQrAsync(string sessionId, string? qrData, Actor? actor = null, CancellationToken cancellationToken = default) =>
            manager.UpdateQrAsync(sessionId, qrData, actor, lease, cancellationToken);

        public Task<BotSession> RecordMessageAsync(string sessionId, string text, Actor? actor = null, CancellationToken cancellationToken = default) =>
            manager.RecordMessageAsync(sessionId, text, null, actor, lease, cancellationToken);

        public Task<BotSession> ReportConnectionAsync(string sessionId, string state, string? detail = null, Actor? actor = null, CancellationToken cancellationToken = default) =>
            manager.ReportConnectionAsync(sessionId, ParseConnectionState(state), detail, null, actor, lease, cancellationToken);

        public Task SaveAuthStateAsync(string sessionId, ReadOnlyMemory<byte>? state, Actor? actor = null, CancellationToken cancellationToken = default) =>
            manager.SaveAuthStateAsync(sessionId, state, actor, lease, cancellationToken);

        public Task<byte[]?> LoadAuthStateAsync(string sessionId, CancellationToken cancellationToken = default) =>
            manager.LoadAuthStateAsync(sessionId, cancellationToken);
    }
}
