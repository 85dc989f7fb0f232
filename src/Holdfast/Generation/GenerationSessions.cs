using System.Globalization;
using System.Security.Cryptography;
using Holdfast.Audit;
using Holdfast.Generation.Backends;
using Holdfast.Sessions;
using Holdfast.Storage;
using Microsoft.Extensions.Options;

namespace Holdfast.Generation;

/// <summary>The result of a start: the session, and whether this call created it (false: the idempotency key was already used).</summary>
public sealed record GenerationStartResult(GenerationSession Session, bool Created);

/// <summary>
/// What endpoints, the CLI and tests use to start, control, read and follow generation sessions. Owner scoping:
/// every method that takes <c>ownerScope</c> treats a session of another owner exactly like a missing one
/// (<see cref="SessionNotFoundException"/>); pass <c>null</c> for an admin, who sees every session.
/// Control is desired-state: a pause or cancel is durable when its task completes, and the runner that owns the
/// session reconciles (pass <c>wait</c> to also wait for that).
/// </summary>
public sealed class GenerationSessions
{
    private readonly IGenerationStore _store;
    private readonly IAuditLog _audit;
    private readonly IChangeSignals _signals;
    private readonly GenerationEventHub _hub;
    private readonly GenerationFollower _follower;
    private readonly GenerationBackends _backends;
    private readonly GenerationRunner _runner;
    private readonly GenerationOptions _options;
    private readonly TimeProvider _time;

    internal GenerationSessions(
        IGenerationStore store,
        IAuditLog audit,
        IChangeSignals signals,
        GenerationEventHub hub,
        GenerationFollower follower,
        GenerationBackends backends,
        GenerationRunner runner,
        IOptions<GenerationOptions> options,
        TimeProvider time)
    {
        _store = store;
        _audit = audit;
        _signals = signals;
        _hub = hub;
        _follower = follower;
        _backends = backends;
        _runner = runner;
        _options = options.Value;
        _time = time;
    }

    /// <summary>
    /// Starts a generation: validates the request and stores the session <c>queued</c> (the runner picks it up).
    /// With an <see cref="CreateGenerationRequest.IdempotencyKey"/> already used by the same owner for the same
    /// request, returns that session with <c>Created = false</c>; for a different request it throws
    /// <see cref="SessionConflictException"/>. Completes once the session is durably stored.
    /// </summary>
    /// <exception cref="InvalidSessionInputException">The request is invalid (the message says which field and why).</exception>
    /// <exception cref="ModelNotFoundException">The backend lists its models and the requested one is not among them.</exception>
    public async Task<GenerationStartResult> CreateAsync(CreateGenerationRequest request, Actor? actor = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        GenerationRequestValidation.Validate(request, _options);
        var backend = _backends.ChooseName(request.Backend, request.Model);
        await _backends.EnsureModelAsync(backend, request.Model, cancellationToken);
        var parameters = request.Parameters ?? GenerationParameters.Default;
        var row = new NewGeneration(
            NewId(),
            request.Owner,
            backend,
            request.Model,
            request.Input,
            parameters,
            request.Metadata,
            request.PreviousSessionId,
            request.IdempotencyKey,
            request.IdempotencyKey is null ? null : GenerationRules.RequestHash(request, backend, parameters));
        var (change, created) = await _store.CreateAsync(row, actor ?? new Actor(request.Owner), cancellationToken);
        if (created)
        {
            await PublishAsync(change);
        }

        return new GenerationStartResult(change.Session, created);
    }

    /// <summary>The session with its output so far (one row read). Completes with the stored state.</summary>
    /// <exception cref="SessionNotFoundException">No such session for this owner.</exception>
    public async Task<GenerationSession> GetAsync(string id, string? ownerScope, CancellationToken cancellationToken = default) =>
        await _store.FindAsync(id, ownerScope, cancellationToken) ?? throw new SessionNotFoundException(SessionKind.Generation, id);

    /// <summary>A page of sessions, newest first.</summary>
    public Task<GenerationPage> ListAsync(GenerationListQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.Limit is < 1 or > 500)
        {
            throw new InvalidSessionInputException("limit", $"'limit' must be between 1 and 500; it is {query.Limit.ToString(CultureInfo.InvariantCulture)}.");
        }

        return _store.ListAsync(query, cancellationToken);
    }

    /// <summary>
    /// Asks the session to pause (<see cref="Actor.Reason"/> becomes the pause reason, default <c>user</c>). The task
    /// completes once the request is durable (a crash right after it still ends in <c>paused</c>); with
    /// <paramref name="wait"/>, it also waits up to that long for the runner to stop and returns the record then.
    /// Pausing a paused session succeeds and changes nothing.
    /// </summary>
    /// <exception cref="SessionConflictException">The session cannot be paused (completed, cancelled, failed) or <paramref name="expectedVersion"/> is stale.</exception>
    public Task<GenerationSession> PauseAsync(
        string id, Actor actor, string? ownerScope = null, long? expectedVersion = null, TimeSpan? wait = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(actor);
        return ControlAsync(id, actor, ownerScope, GenerationCommand.Pause(actor.Reason), expectedVersion, wait, s => s.Status != GenerationStatus.Running, cancellationToken);
    }

    /// <summary>
    /// Resumes a paused or failed session: it is queued and continues from its output so far. Completes once that is
    /// durable; with <paramref name="wait"/>, also waits for the runner to start it. Resuming a queued or running
    /// session succeeds and changes nothing; of two concurrent resumes exactly one changes the session.
    /// </summary>
    /// <exception cref="SessionConflictException">The session is completed or cancelled, or <paramref name="expectedVersion"/> is stale.</exception>
    public Task<GenerationSession> ResumeAsync(
        string id, Actor actor, string? ownerScope = null, long? expectedVersion = null, TimeSpan? wait = null, CancellationToken cancellationToken = default) =>
        ControlAsync(id, actor, ownerScope, GenerationCommand.Resume, expectedVersion, wait, s => s.Status != GenerationStatus.Queued, cancellationToken);

    /// <summary>
    /// Cancels the session for good, keeping its partial output. A running session's upstream request is closed at
    /// once; a cancel that arrives before the first token still wins. Completes once the cancel is durable; with
    /// <paramref name="wait"/>, also waits for the runner to reach <c>cancelled</c>. Repeated cancels return the same record.
    /// </summary>
    /// <exception cref="SessionConflictException">The session already completed, or <paramref name="expectedVersion"/> is stale.</exception>
    public Task<GenerationSession> CancelAsync(
        string id, Actor actor, string? ownerScope = null, long? expectedVersion = null, TimeSpan? wait = null, CancellationToken cancellationToken = default) =>
        ControlAsync(id, actor, ownerScope, GenerationCommand.Cancel, expectedVersion, wait, s => s.Status != GenerationStatus.Running, cancellationToken);

    /// <summary>
    /// Starts a new session whose output begins with the parent's output up to event <paramref name="atSeq"/>
    /// (default: its last persisted event) and continues from there. Parent and fork are independent afterwards.
    /// Completes once the fork is stored <c>queued</c>.
    /// </summary>
    public async Task<GenerationSession> ForkAsync(string id, Actor actor, string? ownerScope = null, long? atSeq = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(actor);
        var change = await _store.ForkAsync(id, ownerScope, atSeq, NewId(), actor, cancellationToken);
        await PublishAsync(change);
        return change.Session;
    }

    /// <summary>Deletes a session that is not running, with its event log (the audit trail keeps a record). Completes once deleted.</summary>
    /// <exception cref="SessionConflictException">The session is running; pause or cancel it first.</exception>
    public async Task DeleteAsync(string id, Actor actor, string? ownerScope = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(actor);
        await _store.DeleteAsync(id, ownerScope, actor, cancellationToken);
        _hub.NotifyChanged(id);
    }

    /// <summary>Stored log events after <paramref name="afterSeq"/>, in order, at most <paramref name="limit"/> (1–5000).</summary>
    public async Task<IReadOnlyList<GenerationLogEvent>> ReadLogAsync(string id, string? ownerScope, long afterSeq = 0, int limit = 500, CancellationToken cancellationToken = default)
    {
        if (limit is < 1 or > 5000)
        {
            throw new InvalidSessionInputException("limit", $"'limit' must be between 1 and 5000; it is {limit.ToString(CultureInfo.InvariantCulture)}.");
        }

        return await _store.ReadLogAsync(id, ownerScope, Math.Max(0, afterSeq), limit, cancellationToken)
            ?? throw new SessionNotFoundException(SessionKind.Generation, id);
    }

    /// <summary>
    /// Every log event after <paramref name="afterSeq"/>: the stored part, then the live tail as it is produced, in
    /// order with no gap and no duplicate (see <see cref="GenerationFollower.FollowAsync"/>). The sequence ends after
    /// the session's terminal status event or when <paramref name="cancellationToken"/> is cancelled; detaching never
    /// stops the run. The first <c>MoveNextAsync</c> throws <see cref="SessionNotFoundException"/> for a missing session.
    /// </summary>
    public IAsyncEnumerable<GenerationLogEvent> FollowAsync(string id, string? ownerScope, long afterSeq = 0, CancellationToken cancellationToken = default) =>
        _follower.FollowAsync(id, ownerScope, afterSeq, committedOnly: false, cancellationToken);

    /// <summary>
    /// Like <see cref="FollowAsync"/>, but every event is relayed only once it is committed (at most one
    /// <see cref="GenerationOptions.FlushInterval"/> after it was produced), so a reader's <c>afterSeq</c> (an SSE
    /// <c>Last-Event-ID</c>) stays valid across a crash of the service: no text is ever seen twice.
    /// </summary>
    public IAsyncEnumerable<GenerationLogEvent> FollowCommittedAsync(string id, string? ownerScope, long afterSeq = 0, CancellationToken cancellationToken = default) =>
        _follower.FollowAsync(id, ownerScope, afterSeq, committedOnly: true, cancellationToken);

    /// <summary>Refuses to follow from a seq inside a compacted log; see <see cref="GenerationFollower.CheckFollowFromAsync"/>.</summary>
    /// <exception cref="InvalidSessionInputException">The seq falls inside the compacted part.</exception>
    internal Task CheckFollowFromAsync(string id, long afterSeq, CancellationToken cancellationToken = default) =>
        _follower.CheckFollowFromAsync(id, afterSeq, cancellationToken);

    /// <summary>Waits until the log of <paramref name="id"/> holds <paramref name="seq"/> (its group commit is done); returns the durable seq.</summary>
    internal Task<long> WaitDurableAsync(string id, long seq, CancellationToken cancellationToken = default) =>
        _follower.WaitDurableAsync(id, seq, cancellationToken);

    /// <summary>Waits until <paramref name="e"/> is durable; says whether to relay it as it is (see <see cref="GenerationFollower.WaitRelayableAsync"/>).</summary>
    internal Task<(long Durable, bool AsRelayed)> WaitRelayableAsync(GenerationLogEvent e, long knownDurable, CancellationToken cancellationToken = default) =>
        _follower.WaitRelayableAsync(e, knownDurable, cancellationToken);

    /// <summary>Stored log events after <paramref name="afterSeq"/> (no owner check: for a follower already authorised).</summary>
    internal Task<IReadOnlyList<GenerationLogEvent>> ReadStoredAfterAsync(string id, long afterSeq, CancellationToken cancellationToken = default) =>
        _store.ReadLogAfterAsync(id, afterSeq, 1000, cancellationToken);

    /// <summary>The session's audit trail, newest first (see <see cref="IAuditLog.ReadAuditAsync"/>).</summary>
    public async Task<AuditPage> ReadAuditAsync(string id, string? ownerScope, long? beforeSeq = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        _ = await GetAsync(id, ownerScope, cancellationToken);
        return await _audit.ReadAuditAsync(SessionKind.Generation, id, beforeSeq, limit, cancellationToken);
    }

    private async Task<GenerationSession> ControlAsync(
        string id,
        Actor actor,
        string? ownerScope,
        GenerationCommand command,
        long? expectedVersion,
        TimeSpan? wait,
        Func<GenerationSession, bool> settled,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(actor);
        var change = await _store.ApplyControlAsync(id, ownerScope, command, actor, expectedVersion, cancellationToken);
        var session = change.Session;
        if (change.Changed)
        {
            if (session.Status == GenerationStatus.Running && session.DesiredState != GenerationDesiredState.Running)
            {
                // The control is durable: stop this process's run of the session now, rather than through the
                // dispatcher's next pass (which re-reads every stop request from the store behind its claim write).
                // A run on another node hears the stop request through the change signals below.
                _runner.RequestStop(id);
            }

            await PublishAsync(change);
        }

        if (wait is not { } limit || limit <= TimeSpan.Zero || settled(session))
        {
            return session;
        }

        // Woken by the runner's status signal; the re-read every second covers a runner in another process.
        using var subscription = _signals.Subscribe(id);
        var deadline = _time.GetTimestamp();
        while (true)
        {
            session = await GetAsync(id, ownerScope, cancellationToken);
            var left = limit - _time.GetElapsedTime(deadline);
            if (settled(session) || left <= TimeSpan.Zero)
            {
                return session;
            }

            using var timer = new CancellationTokenSource(left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1), _time);
            using var tick = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
            try
            {
                await subscription.WaitAsync(tick.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Re-read on the next loop.
            }
        }
    }

    /// <summary>Fans a committed change out: its status event to live followers, and the change signals (runners, followers).</summary>
    private async Task PublishAsync(GenerationChange change)
    {
        if (change.StatusEvent is { } statusEvent)
        {
            _hub.Publish(statusEvent, persisted: true);
        }
        else
        {
            _hub.NotifyChanged(change.Session.Id);
        }

        await GenerationSignals.PublishAsync(_signals, change);
    }

    private string NewId()
    {
        Span<byte> random = stackalloc byte[6];
        RandomNumberGenerator.Fill(random);
        return string.Create(CultureInfo.InvariantCulture, $"gen_{_time.GetUtcNow().ToUnixTimeMilliseconds():x12}{Convert.ToHexStringLower(random)}");
    }
}
