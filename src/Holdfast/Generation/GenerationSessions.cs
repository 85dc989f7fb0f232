using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Holdfast.Audit;
using Holdfast.Generation.Backends;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Microsoft.Extensions.DependencyInjection;
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
    private const int MaxMessages = 1_000;
    private const int MaxMetadataEntries = 16;

    private readonly SqliteGenerationStore _store;
    private readonly GenerationEventHub _hub;
    private readonly GenerationRunner _runner;
    private readonly GenerationBackends _backends;
    private readonly GenerationOptions _options;
    private readonly TimeProvider _time;
    private readonly IServiceProvider _services;

    internal GenerationSessions(
        SqliteGenerationStore store,
        GenerationEventHub hub,
        GenerationRunner runner,
        GenerationBackends backends,
        IOptions<GenerationOptions> options,
        TimeProvider time,
        IServiceProvider services)
    {
        _store = store;
        _hub = hub;
        _runner = runner;
        _backends = backends;
        _options = options.Value;
        _time = time;
        _services = services;
    }

    /// <summary>
    /// Starts a generation: validates the request and stores the session <c>queued</c> (the runner picks it up).
    /// With an <see cref="CreateGenerationRequest.IdempotencyKey"/> already used by the same owner for the same
    /// request, returns that session with <c>Created = false</c>; for a different request it throws
    /// <see cref="SessionConflictException"/>. Completes once the session is durably stored.
    /// </summary>
    /// <exception cref="InvalidSessionInputException">The request is invalid (the message says which field and why).</exception>
    public async Task<GenerationStartResult> CreateAsync(CreateGenerationRequest request, Actor? actor = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        Validate(request);
        var backend = _backends.ChooseName(request.Backend, request.Model);
        var parameters = request.Parameters ?? GenerationParameters.Default;
        var row = new NewGenerationRow(
            NewId(),
            request.Owner,
            backend,
            request.Model,
            request.Input,
            parameters,
            request.Metadata,
            request.PreviousSessionId,
            request.IdempotencyKey,
            request.IdempotencyKey is null ? null : RequestHash(request, backend, parameters));
        var (change, created) = await _store.CreateAsync(row, actor ?? new Actor(request.Owner), cancellationToken);
        if (created)
        {
            Publish(change);
            _runner.Wake();
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
        Publish(change);
        _runner.Wake();
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
    /// order with no gap and no duplicate. The sequence ends after the session's terminal status event (completed,
    /// cancelled or failed) or when <paramref name="cancellationToken"/> is cancelled; detaching never stops the run.
    /// Works for any number of followers, and across processes (a session run by another process is followed from
    /// the store). The first <c>MoveNextAsync</c> throws <see cref="SessionNotFoundException"/> for a missing session.
    /// <para>
    /// Chunks are relayed the moment the backend produces them, before their group commit; if the process then
    /// crashes, the last flush interval is regenerated after the restart under new sequence numbers, so a reader that
    /// resumes with <c>afterSeq</c> from before the crash can see that text twice. <see cref="FollowCommittedAsync"/>
    /// relays only committed events, for readers that must resume exactly across crashes.
    /// </para>
    /// </summary>
    public IAsyncEnumerable<GenerationLogEvent> FollowAsync(string id, string? ownerScope, long afterSeq = 0, CancellationToken cancellationToken = default) =>
        FollowCoreAsync(id, ownerScope, afterSeq, committedOnly: false, cancellationToken);

    /// <summary>
    /// Like <see cref="FollowAsync"/>, but every event is relayed only once it is committed (at most one
    /// <see cref="GenerationOptions.FlushInterval"/> after it was produced), so a reader's <c>afterSeq</c> (an SSE
    /// <c>Last-Event-ID</c>) stays valid across a crash of the service: no text is ever seen twice.
    /// </summary>
    public IAsyncEnumerable<GenerationLogEvent> FollowCommittedAsync(string id, string? ownerScope, long afterSeq = 0, CancellationToken cancellationToken = default) =>
        FollowCoreAsync(id, ownerScope, afterSeq, committedOnly: true, cancellationToken);

    /// <summary>
    /// Refuses to follow from a seq inside a compacted log (<see cref="GenerationOptions.LogRetention"/>): its text up to
    /// the merged chunk is one event, so a reader that already has part of it would get that part again. Following
    /// from 0, or from the merged chunk's seq on, stays exact. Callers that start a response before following (SSE)
    /// call it first, so the refusal is a 400 problem rather than a broken stream.
    /// </summary>
    /// <exception cref="InvalidSessionInputException">The seq falls inside the compacted part.</exception>
    internal async Task CheckFollowFromAsync(string id, long afterSeq, CancellationToken cancellationToken = default)
    {
        if (afterSeq > 0 && await _store.ReadCompactedChunkSeqAsync(id, cancellationToken) is { } merged && afterSeq < merged)
        {
            throw new InvalidSessionInputException(
                "after",
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"The event log of session '{id}' was compacted (Generation:LogRetention): its text up to seq {merged} is one event now, so it cannot be resumed after seq {afterSeq} without repeating text. Follow it from 0 (the whole text) or after seq {merged}, or read the session's output."));
        }
    }

    private async IAsyncEnumerable<GenerationLogEvent> FollowCoreAsync(
        string id,
        string? ownerScope,
        long afterSeq,
        bool committedOnly,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        _ = await GetAsync(id, ownerScope, cancellationToken);
        await CheckFollowFromAsync(id, afterSeq, cancellationToken);
        using var subscription = _hub.Subscribe(id);
        var last = Math.Max(0, afterSeq);
        var held = new SortedDictionary<long, GenerationLogEvent>();

        // Stored part, then the events not yet committed when we subscribed.
        GenerationLogEvent? lastEvent = null;
        while (true)
        {
            var page = await _store.ReadLogUncheckedAsync(id, last, 1000, cancellationToken);
            foreach (var e in page)
            {
                last = e.Seq;
                lastEvent = e;
                yield return e;
            }

            if (page.Count < 1000)
            {
                break;
            }
        }

        if (committedOnly)
        {
            await foreach (var e in CommittedTailAsync(id, subscription, last, lastEvent, cancellationToken))
            {
                yield return e;
            }

            yield break;
        }

        foreach (var e in subscription.Pending.Where(e => e.Seq > last).OrderBy(e => e.Seq))
        {
            held[e.Seq] = e;
        }

        while (held.Remove(last + 1, out var next))
        {
            last = next.Seq;
            lastEvent = next;
            yield return next;
        }

        if (lastEvent?.IsTerminal == true)
        {
            yield break;
        }

        // Live tail; any gap (events published out of order, or produced by another process) is filled from the store.
        var poll = TimeSpan.FromMilliseconds(Math.Clamp(_options.PollInterval.TotalMilliseconds / 2, 50, 500));
        while (true)
        {
            var gotLive = false;
            using (var timer = new CancellationTokenSource(poll, _time))
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token))
            {
                try
                {
                    gotLive = await subscription.Reader.WaitToReadAsync(wait.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    gotLive = false;
                }
            }

            while (subscription.Reader.TryRead(out var live))
            {
                if (live.Seq > last)
                {
                    held[live.Seq] = live;
                }
            }

            var fill = !gotLive || (held.Count > 0 && !held.ContainsKey(last + 1));
            if (fill)
            {
                foreach (var e in await _store.ReadLogUncheckedAsync(id, last, 1000, cancellationToken))
                {
                    held.TryAdd(e.Seq, e);
                }
            }

            while (held.Remove(last + 1, out var next))
            {
                last = next.Seq;
                yield return next;
                if (next.IsTerminal && !held.ContainsKey(last + 1))
                {
                    yield break;
                }
            }

            if (!gotLive && await _store.FindAsync(id, null, cancellationToken) is null)
            {
                yield break;
            }
        }
    }

    /// <summary>
    /// The committed-only live tail: live events are used only as a signal that the store will have more within a
    /// flush interval; everything yielded is read back from the store.
    /// </summary>
    private async IAsyncEnumerable<GenerationLogEvent> CommittedTailAsync(
        string id,
        GenerationEventHub.Subscription subscription,
        long last,
        GenerationLogEvent? lastEvent,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (lastEvent?.IsTerminal == true)
        {
            yield break;
        }

        var idle = TimeSpan.FromMilliseconds(Math.Clamp(_options.PollInterval.TotalMilliseconds / 2, 50, 500));
        var busy = _options.FlushInterval + _options.FlushInterval;
        var signalled = true;
        while (true)
        {
            using (var timer = new CancellationTokenSource(signalled ? busy : idle, _time))
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token))
            {
                try
                {
                    signalled = await subscription.Reader.WaitToReadAsync(wait.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    signalled = false;
                }
            }

            while (subscription.Reader.TryRead(out _))
            {
                // A signal only: the event itself is read back from the store once committed.
            }

            var page = await _store.ReadLogUncheckedAsync(id, last, 1000, cancellationToken);
            for (var i = 0; i < page.Count; i++)
            {
                last = page[i].Seq;
                yield return page[i];
                if (page[i].IsTerminal && i == page.Count - 1 && page.Count < 1000)
                {
                    yield break;
                }
            }

            signalled |= page.Count > 0;
            if (page.Count == 0 && !signalled && await _store.FindAsync(id, null, cancellationToken) is null)
            {
                yield break;
            }
        }
    }

    /// <summary>The session's audit trail, newest first (see <see cref="IAuditLog.ReadAuditAsync"/>).</summary>
    public async Task<AuditPage> ReadAuditAsync(string id, string? ownerScope, long? beforeSeq = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        _ = await GetAsync(id, ownerScope, cancellationToken);
        var audit = _services.GetService<IAuditLog>()
            ?? throw new InvalidOperationException("No IAuditLog is registered; call AddHoldfastCore().");
        return await audit.ReadAuditAsync(SessionKind.Generation, id, beforeSeq, limit, cancellationToken);
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
            Publish(change);
            if (session.Status == GenerationStatus.Running && session.DesiredState != GenerationDesiredState.Running)
            {
                _runner.RequestStop(id);
            }
            else if (session.Status == GenerationStatus.Queued)
            {
                _runner.Wake();
            }
        }

        if (wait is not { } limit || limit <= TimeSpan.Zero || settled(session))
        {
            return session;
        }

        using var subscription = _hub.Subscribe(id);
        var deadline = _time.GetTimestamp();
        while (true)
        {
            session = await GetAsync(id, ownerScope, cancellationToken);
            var left = limit - _time.GetElapsedTime(deadline);
            if (settled(session) || left <= TimeSpan.Zero)
            {
                return session;
            }

            using var timer = new CancellationTokenSource(left < TimeSpan.FromMilliseconds(100) ? left : TimeSpan.FromMilliseconds(100), _time);
            using var tick = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
            try
            {
                while (await subscription.Reader.WaitToReadAsync(tick.Token))
                {
                    if (subscription.Reader.TryRead(out var e) && e.Type == GenerationLogEventType.Status)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Re-read on the next loop.
            }
        }
    }

    private void Publish(GenerationChange change)
    {
        if (change.StatusEvent is { } statusEvent)
        {
            _hub.Publish(statusEvent, persisted: true);
        }
        else
        {
            _hub.NotifyChanged(change.Session.Id);
        }
    }

    private void Validate(CreateGenerationRequest request)
    {
        SessionIds.Validate(request.Owner, "owner");
        if (string.IsNullOrWhiteSpace(request.Model) || request.Model.Length > 200)
        {
            throw new InvalidSessionInputException("model", "'model' is required (at most 200 characters), e.g. 'llama3.2', or 'scripted' for the deterministic test backend.");
        }

        if (request.Input is null || request.Input.Count == 0)
        {
            throw new InvalidSessionInputException("input", "'input' needs at least one message.");
        }

        if (request.Input.Count > MaxMessages)
        {
            throw new InvalidSessionInputException("input", $"'input' has {request.Input.Count.ToString(CultureInfo.InvariantCulture)} messages; the limit is {MaxMessages.ToString(CultureInfo.InvariantCulture)}.");
        }

        long characters = 0;
        for (var i = 0; i < request.Input.Count; i++)
        {
            var message = request.Input[i];
            if (message is null || message.Role is not ("system" or "developer" or "user" or "assistant"))
            {
                throw new InvalidSessionInputException($"input[{i}].role", $"'input[{i}].role' must be system, developer, user or assistant.");
            }

            if (message.Content is null)
            {
                throw new InvalidSessionInputException($"input[{i}].content", $"'input[{i}].content' is required.");
            }

            characters += message.Content.Length;
        }

        if (characters > _options.MaxInputCharacters)
        {
            throw new InvalidSessionInputException("input", $"'input' has {characters.ToString(CultureInfo.InvariantCulture)} characters; the limit is {_options.MaxInputCharacters.ToString(CultureInfo.InvariantCulture)} (Generation:MaxInputCharacters).");
        }

        var p = request.Parameters;
        if (p is not null)
        {
            if (p.Temperature is < 0 or > 2 || (p.Temperature is { } t && double.IsNaN(t)))
            {
                throw new InvalidSessionInputException("parameters.temperature", "'temperature' must be between 0 and 2.");
            }

            if (p.TopP is < 0 or > 1 || (p.TopP is { } tp && double.IsNaN(tp)))
            {
                throw new InvalidSessionInputException("parameters.top_p", "'top_p' must be between 0 and 1.");
            }

            if (p.MaxTokens is < 1 or > 1_000_000)
            {
                throw new InvalidSessionInputException("parameters.max_tokens", "'max_tokens' must be between 1 and 1000000.");
            }

            if (p.Stop is { } stop && (stop.Count > 8 || stop.Any(s => string.IsNullOrEmpty(s) || s.Length > 100)))
            {
                throw new InvalidSessionInputException("parameters.stop", "'stop' takes at most 8 non-empty strings of at most 100 characters.");
            }
        }

        if (request.Metadata is { } metadata && (metadata.Count > MaxMetadataEntries || metadata.Any(kv => kv.Key.Length is 0 or > 64 || kv.Value is null || kv.Value.Length > 512)))
        {
            throw new InvalidSessionInputException("metadata", $"'metadata' takes at most {MaxMetadataEntries} entries, keys of 1–64 and values of at most 512 characters.");
        }

        if (request.IdempotencyKey is not null)
        {
            SessionIds.Validate(request.IdempotencyKey, "idempotency_key");
        }

        if (request.PreviousSessionId is not null)
        {
            SessionIds.Validate(request.PreviousSessionId, "previous_session_id");
        }
    }

    private string NewId()
    {
        Span<byte> random = stackalloc byte[6];
        RandomNumberGenerator.Fill(random);
        return string.Create(CultureInfo.InvariantCulture, $"gen_{_time.GetUtcNow().ToUnixTimeMilliseconds():x12}{Convert.ToHexStringLower(random)}");
    }

    private static string RequestHash(CreateGenerationRequest request, string backend, GenerationParameters parameters)
    {
        var canonical = GenerationJson.Serialize(new
        {
            request.Model,
            Backend = backend,
            request.Input,
            Parameters = parameters,
            request.PreviousSessionId,
            Metadata = request.Metadata?.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList(),
        });
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }
}
