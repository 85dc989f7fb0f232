using Holdfast.Cluster;
using System.Globalization;
using System.Text;
using Holdfast.Audit;
using Holdfast.Generation;
using Holdfast.Sessions;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary>
/// Generation sessions in SQLite: the session row with its materialized output, the ordered event log, and the
/// audit event of every change, each written in one transaction through <see cref="SqliteDatabase.WriteAsync{T}"/>.
/// Status changes are compare-and-swap on (status, version); runner writes are fenced by the lease epoch. Implements
/// <see cref="IGenerationStore"/> and <see cref="IRunStore"/> (see docs/storage-ports.md); the rules it applies are the
/// core's (<see cref="GenerationStateMachine"/>, <see cref="GenerationRules"/>).
/// </summary>
internal sealed class SqliteGenerationStore : IGenerationStore, IRunStore
{
    private const string Columns = $"""
        id, owner, backend, model, input, parameters, metadata, status, desired_state, pause_reason, error, finish_reason,
        input_tokens, {LiveOutputTokens}, previous_session_id, forked_from, forked_at_seq, continuation, {WholeOutput}, {LiveLastSeq},
        attempts, idempotency_key, created_at, updated_at, completed_at, version, log_compacted_at IS NOT NULL
        """;

    /// <summary>
    /// The columns of <see cref="Columns"/> with an empty text in place of the output: a session's state, for a write
    /// that does not need its text (a run ending reads the text back once the transition folded it in).
    /// </summary>
    private const string StateColumns = $"""
        id, owner, backend, model, input, parameters, metadata, status, desired_state, pause_reason, error, finish_reason,
        input_tokens, {LiveOutputTokens}, previous_session_id, forked_from, forked_at_seq, continuation, '', {LiveLastSeq},
        attempts, idempotency_key, created_at, updated_at, completed_at, version, log_compacted_at IS NOT NULL
        """;

    /// <summary>The columns of <see cref="Columns"/> with the folded text alone: the whole output of a row folded up to its last event.</summary>
    private const string FoldedColumns = $"""
        id, owner, backend, model, input, parameters, metadata, status, desired_state, pause_reason, error, finish_reason,
        input_tokens, {LiveOutputTokens}, previous_session_id, forked_from, forked_at_seq, continuation, output, {LiveLastSeq},
        attempts, idempotency_key, created_at, updated_at, completed_at, version, log_compacted_at IS NOT NULL
        """;

    /// <summary>
    /// A session's last seq (inside a statement on <c>generation_sessions</c>): a running session's from its progress
    /// row (migration 0016), which a group commit advances without touching the session's row.
    /// </summary>
    internal const string LiveLastSeq = """
        COALESCE((SELECT p.last_seq FROM generation_progress p WHERE p.session_id = generation_sessions.id), generation_sessions.last_seq)
        """;

    /// <summary>A session's lease expiry, like <see cref="LiveLastSeq"/> (the renewal writes the progress row).</summary>
    internal const string LiveLeaseExpires = """
        COALESCE((SELECT p.lease_expires_at FROM generation_progress p WHERE p.session_id = generation_sessions.id), generation_sessions.lease_expires_at)
        """;

    /// <summary>A session's output token count, like <see cref="LiveLastSeq"/>.</summary>
    internal const string LiveOutputTokens = """
        COALESCE((SELECT p.output_tokens FROM generation_progress p WHERE p.session_id = generation_sessions.id), generation_sessions.output_tokens)
        """;

    /// <summary>
    /// A session's whole output (inside a statement on <c>generation_sessions</c>): the folded text in <c>output</c>
    /// and the chunks after <c>output_seq</c>, which only a running session has (migration 0014).
    /// </summary>
    internal const string WholeOutput = """
        generation_sessions.output || COALESCE((SELECT group_concat(t.payload, '' ORDER BY t.seq) FROM generation_log t
            WHERE t.session_id = generation_sessions.id AND t.seq > generation_sessions.output_seq AND t.type = 'chunk'), '')
        """;

    /// <summary>
    /// A group commit folds a running session's tail of chunk rows into <c>output</c> once this many events followed
    /// the folded text: a long output is then rewritten once per this many events instead of once per commit, and a
    /// read of a running session concatenates at most this many rows.
    /// </summary>
    private const int FoldEvery = 256;

    private const int SqliteUniqueViolation = 2067; // SQLITE_CONSTRAINT_UNIQUE

    private readonly SqliteDatabase _database;
    private readonly TimeProvider _time;

    public SqliteGenerationStore(SqliteDatabase database, TimeProvider time)
    {
        _database = database;
        _time = time;
    }

    /// <summary>Inserts a session (queued), or returns the one already started with the same idempotency key.</summary>
    public async Task<GenerationCreateResult> CreateAsync(NewGeneration row, Actor actor, CancellationToken cancellationToken = default)
    {
        try
        {
            return await WriteAsync((connection, transaction) => CreateInTransactionAsync(connection, transaction, row, actor, cancellationToken), cancellationToken);
        }
        catch (SqliteException ex) when (ex.SqliteExtendedErrorCode == SqliteUniqueViolation && row.IdempotencyKey is not null)
        {
            // Another process inserted the same key between our check and insert: return its session.
            var existing = await _database.ReadAsync(connection => ReadByIdempotencyKeyAsync(connection, null, row.Owner, row.IdempotencyKey, cancellationToken), cancellationToken)
                ?? throw new SessionConflictException("A session with this Idempotency-Key is being created; retry the request.");
            GenerationRules.CheckIdempotentRetry(row.IdempotencyKey, existing.Session, existing.RequestHash, row.RequestHash);
            return new GenerationCreateResult(new GenerationChange(existing.Session, null, false), false);
        }
    }

    /// <summary>Creates a new queued session whose output starts with the output of <paramref name="parentId"/> up to <paramref name="atSeq"/>.</summary>
    public Task<GenerationChange> ForkAsync(string parentId, string? ownerScope, long? atSeq, string newId, Actor actor, CancellationToken cancellationToken = default) =>
        WriteAsync(
            async (connection, transaction) =>
            {
                var parent = await ReadSessionAsync(connection, transaction, parentId, ownerScope, cancellationToken)
                    ?? throw new SessionNotFoundException(SessionKind.Generation, parentId);
                var at = GenerationRules.CheckFork(parent, atSeq);
                var prefix = new StringBuilder();
                long chunks = 0;
                await using (var read = Command(connection, transaction, """
                    SELECT payload FROM generation_log WHERE session_id = $id AND type = 'chunk' AND seq <= $at ORDER BY seq
                    """))
                {
                    read.Parameters.AddWithValue("$id", parentId);
                    read.Parameters.AddWithValue("$at", at);
                    await using var reader = await read.ExecuteReaderAsync(cancellationToken);
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        prefix.Append(reader.GetString(0));
                        chunks++;
                    }
                }

                var row = new NewGeneration(
                    newId, parent.Owner, parent.Backend, parent.Model, parent.Input, parent.Parameters, parent.Metadata,
                    parent.PreviousSessionId, IdempotencyKey: null, RequestHash: null, ForkedFrom: parent.Id, ForkedAtSeq: at,
                    InitialOutput: prefix.ToString(), InitialOutputTokens: GenerationRules.ForkOutputTokens(parent, at, chunks));
                return (await CreateInTransactionAsync(connection, transaction, row, actor, cancellationToken)).Change;
            },
            cancellationToken);

    /// <summary>The session, or null when it does not exist or belongs to another owner (<paramref name="ownerScope"/> null = any owner).</summary>
    public Task<GenerationSession?> FindAsync(string id, string? ownerScope, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(connection => ReadSessionAsync(connection, null, id, ownerScope, cancellationToken), cancellationToken);

    /// <summary>Sessions newest first, filtered by owner and status, one page after <see cref="GenerationListQuery.Cursor"/>.</summary>
    public Task<GenerationPage> ListAsync(GenerationListQuery query, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async connection =>
            {
                await using var command = Command(connection, null, $"""
                    SELECT {Columns} FROM generation_sessions
                    WHERE ($owner IS NULL OR owner = $owner)
                      AND ($status IS NULL OR status = $status)
                      AND ($cursor IS NULL OR id < $cursor)
                    ORDER BY id DESC
                    LIMIT $limit
                    """);
                command.Parameters.AddWithValue("$owner", (object?)query.Owner ?? DBNull.Value);
                command.Parameters.AddWithValue("$status", (object?)query.Status?.ToWire() ?? DBNull.Value);
                command.Parameters.AddWithValue("$cursor", (object?)query.Cursor ?? DBNull.Value);
                command.Parameters.AddWithValue("$limit", query.Limit + 1);
                var items = new List<GenerationSession>();
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    items.Add(ReadSession(reader));
                }

                string? next = null;
                if (items.Count > query.Limit)
                {
                    items.RemoveAt(items.Count - 1);
                    next = items[^1].Id;
                }

                return new GenerationPage(items, next);
            },
            cancellationToken);

    /// <summary>
    /// Applies a user control (pause, resume, cancel) through the state machine as a compare-and-swap on
    /// (status, version). A control that already holds changes nothing and succeeds, whatever the expected version.
    /// </summary>
    public Task<GenerationChange> ApplyControlAsync(
        string id, string? ownerScope, GenerationCommand command, Actor actor, long? expectedVersion, CancellationToken cancellationToken = default) =>
        WriteAsync(
            async (connection, transaction) =>
            {
                var session = await ReadSessionAsync(connection, transaction, id, ownerScope, cancellationToken)
                    ?? throw new SessionNotFoundException(SessionKind.Generation, id);
                var transition = GenerationStateMachine.ApplyOrThrow(GenerationRules.StateOf(session), command);
                if (!transition.Changed)
                {
                    return new GenerationChange(session, null, false);
                }

                if (expectedVersion is { } expected && expected != session.Version)
                {
                    throw new SessionConflictException(
                        $"The session changed since version {expected.ToString(CultureInfo.InvariantCulture)} (it is now version {session.Version.ToString(CultureInfo.InvariantCulture)}, {GenerationRules.StateOf(session)}); reload it and retry.",
                        session.Status.ToWire(),
                        transition.To.Status.ToWire());
                }

                return await WriteTransitionAsync(connection, transaction, session, transition, actor, new TransitionFacts(), cancellationToken);
            },
            cancellationToken);

    /// <summary>Deletes a session that is not running, with its event log. The audit trail keeps a <c>delete</c> event.</summary>
    public Task DeleteAsync(string id, string? ownerScope, Actor actor, CancellationToken cancellationToken = default) =>
        WriteAsync(
            async (connection, transaction) =>
            {
                var session = await ReadSessionAsync(connection, transaction, id, ownerScope, cancellationToken)
                    ?? throw new SessionNotFoundException(SessionKind.Generation, id);
                GenerationRules.CheckDelete(session);

                await using var delete = Command(connection, transaction, "DELETE FROM generation_sessions WHERE id = $id AND version = $version");
                delete.Parameters.AddWithValue("$id", id);
                delete.Parameters.AddWithValue("$version", session.Version);
                await delete.ExecuteNonQueryAsync(cancellationToken);
                await SqliteAudit.AppendAsync(connection, transaction, SessionKind.Generation, id, actor, AuditActions.Delete, session.Status.ToWire(), null, _time.GetUtcNow(), cancellationToken: cancellationToken);
                return true;
            },
            cancellationToken);

    /// <summary>Events after <paramref name="afterSeq"/>, in order, at most <paramref name="limit"/>. Null when the session is not found.</summary>
    public Task<IReadOnlyList<GenerationLogEvent>?> ReadLogAsync(string id, string? ownerScope, long afterSeq, int limit, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async connection =>
            {
                await using (var exists = Command(connection, null, "SELECT 1 FROM generation_sessions WHERE id = $id AND ($owner IS NULL OR owner = $owner)"))
                {
                    exists.Parameters.AddWithValue("$id", id);
                    exists.Parameters.AddWithValue("$owner", (object?)ownerScope ?? DBNull.Value);
                    if (await exists.ExecuteScalarAsync(cancellationToken) is null)
                    {
                        return null;
                    }
                }

                return (IReadOnlyList<GenerationLogEvent>?)await ReadLogRowsAsync(connection, id, afterSeq, limit, cancellationToken);
            },
            cancellationToken);

    /// <summary>
    /// Claims queued sessions for <see cref="RunClaimRequest.NodeId"/> in one transaction: for each candidate (oldest
    /// first, at most <see cref="RunClaimRequest.Limit"/> per backend, so a long queue on one backend never starves
    /// another) that <paramref name="choose"/> accepts, queued → running, attempts + 1, the continuation it returns, and
    /// a new lease (holder, expiry, epoch + 1).
    /// </summary>
    public Task<IReadOnlyList<RunClaim>> ClaimRunnableAsync(
        RunClaimRequest request, Func<ClaimCandidate, ClaimChoice> choose, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(choose);
        return WriteAsync<IReadOnlyList<RunClaim>>(
            async (connection, transaction) =>
            {
                var candidates = new List<ClaimCandidate>();
                await using (var select = Command(connection, transaction, """
                    SELECT id, backend, has_output, updated_at FROM (
                        SELECT id, backend, length(output) > 0 AS has_output, updated_at,
                               row_number() OVER (PARTITION BY backend ORDER BY id) AS position
                        FROM generation_sessions
                        WHERE status = 'queued' AND desired_state = 'running')
                    WHERE position <= $limit
                    ORDER BY id
                    """))
                {
                    select.Parameters.AddWithValue("$limit", request.Limit);
                    await using var reader = await select.ExecuteReaderAsync(cancellationToken);
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        candidates.Add(new ClaimCandidate(reader.GetString(0), reader.GetString(1), reader.GetBoolean(2), QueuedSince: SqliteTime.Parse(reader.GetString(3))));
                    }
                }

                var load = candidates.Count == 0 ? null : await ReadClaimLoadAsync(connection, transaction, request, cancellationToken);

                var claimed = new List<RunClaim>();
                var expires = _time.GetUtcNow() + request.LeaseDuration;
                foreach (var candidate in candidates)
                {
                    var choice = choose(candidate with { Offered = candidates.Count, Load = load });
                    if (!choice.Take)
                    {
                        continue;
                    }

                    var session = await ReadSessionAsync(connection, transaction, candidate.Id, null, cancellationToken);
                    if (session is null)
                    {
                        continue;
                    }

                    var result = GenerationStateMachine.Apply(GenerationRules.StateOf(session), GenerationCommand.Claim);
                    if (result.Transition is not { } transition)
                    {
                        continue;
                    }

                    var change = await WriteTransitionAsync(
                        connection, transaction, session, transition, GenerationRules.RunnerActor,
                        new TransitionFacts { NewAttempt = true, Continuation = choice.Continuation, Lease = (request.NodeId, expires) }, cancellationToken);
                    claimed.Add(new RunClaim(change, new RunLease(change.Session.Id, request.NodeId, await ReadEpochAsync(connection, transaction, change.Session.Id, cancellationToken), expires)));
                }

                return claimed;
            },
            cancellationToken);
    }

    /// <summary>The cluster's load as a claim sees it (see <see cref="ClaimLoad"/>); on one node, no other node is live.</summary>
    private async Task<ClaimLoad> ReadClaimLoadAsync(SqliteConnection connection, SqliteTransaction transaction, RunClaimRequest request, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        await using var command = Command(connection, transaction, """
            SELECT
                (SELECT count(*) FROM cluster_nodes WHERE node_id <> $node AND stopped_at IS NULL AND heartbeat_at > $live_after),
                (SELECT count(*) FROM generation_sessions h JOIN cluster_nodes n ON n.node_id = h.lease_holder
                 WHERE h.status = 'running'
                   AND COALESCE((SELECT p.lease_expires_at FROM generation_progress p WHERE p.session_id = h.id), h.lease_expires_at) > $now
                   AND n.node_id <> $node AND n.stopped_at IS NULL AND n.heartbeat_at > $live_after),
                (SELECT count(*) FROM generation_sessions WHERE status = 'running' AND lease_holder = $node)
            """);
        command.Parameters.AddWithValue("$node", request.NodeId);
        command.Parameters.AddWithValue("$now", SqliteTime.Format(now));
        command.Parameters.AddWithValue("$live_after", SqliteTime.Format(now - request.LeaseDuration));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new ClaimLoad(reader.GetInt32(0), reader.GetInt32(1), reader.GetInt32(2));
    }

    /// <summary>
    /// Extends every lease <paramref name="nodeId"/> holds on a running session, in one statement; returns the leases it
    /// holds. It goes before every ordinary write waiting for the writer, so group commits and controls cannot starve it.
    /// </summary>
    public Task<IReadOnlyList<RunLease>> RenewLeasesAsync(string nodeId, TimeSpan leaseDuration, bool stopping = false, CancellationToken cancellationToken = default) =>
        WriteAsync<IReadOnlyList<RunLease>>(
            async (connection, transaction) =>
            {
                var now = _time.GetUtcNow();
                var expires = now + leaseDuration;
                await using (var heartbeat = Command(connection, transaction, """
                    INSERT INTO cluster_nodes (node_id, started_at, heartbeat_at, stopped_at)
                    VALUES ($node, $now, $now, CASE WHEN $stopping THEN $now END)
                    ON CONFLICT (node_id) DO UPDATE SET
                        heartbeat_at = excluded.heartbeat_at,
                        started_at = CASE WHEN cluster_nodes.stopped_at IS NULL OR $stopping THEN cluster_nodes.started_at ELSE excluded.started_at END,
                        stopped_at = CASE WHEN $stopping THEN COALESCE(cluster_nodes.stopped_at, excluded.heartbeat_at) END
                    """))
                {
                    heartbeat.Parameters.AddWithValue("$stopping", stopping);
                    heartbeat.Parameters.AddWithValue("$node", nodeId);
                    heartbeat.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                    await heartbeat.ExecuteNonQueryAsync(cancellationToken);
                }

                // The narrow progress rows, not the sessions' own (one or two pages each once their text is long). A
                // running session without one (never written so by this store) is not renewed: its lease lapses and the
                // recovery sweep queues it again from its stored text; its next append would have restored the row.
                await using var renew = Command(connection, transaction, """
                    UPDATE generation_progress SET lease_expires_at = $expires
                    WHERE lease_holder = $node
                    RETURNING session_id, lease_epoch
                    """);
                renew.Parameters.AddWithValue("$expires", SqliteTime.Format(expires));
                renew.Parameters.AddWithValue("$node", nodeId);
                var leases = new List<RunLease>();
                await using var reader = await renew.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    leases.Add(new RunLease(reader.GetString(0), nodeId, reader.GetInt64(1), expires));
                }

                return leases;
            },
            cancellationToken,
            priority: true);

    /// <summary>
    /// One group commit: appends every chunk (one log row each, one output append per session with the coalesced
    /// text), then writes each finished run's status as <see cref="GenerationRules.DecideRunEnd"/> says. Every write is
    /// fenced by its lease epoch: when any is stale, the whole commit is rolled back and <see cref="LeaseLostException"/>
    /// names the sessions. Returns the finished runs' changes in order.
    /// </summary>
    public async Task<IReadOnlyList<GenerationChange>> CommitAsync(
        IReadOnlyList<ChunkAppend> chunks, IReadOnlyList<RunFinish> finishes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        ArgumentNullException.ThrowIfNull(finishes);
        return await WriteAsync<IReadOnlyList<GenerationChange>>(
                async (connection, transaction) =>
                {
                    // Fenced in the writes themselves: a run's output append matches only a running session whose lease
                    // epoch is the run's, so its row count tells a stale run without a read; only an append that matched
                    // nothing, and an ending whose run appended nothing here, read the row to tell why.
                    var fence = new CommitFence();
                    if (chunks.Count > 0)
                    {
                        await AppendChunksAsync(connection, transaction, chunks, fence, cancellationToken);
                    }

                    foreach (var finish in finishes)
                    {
                        await fence.CheckAsync(connection, transaction, finish.SessionId, finish.FencingToken, cancellationToken);
                    }

                    if (fence.Stale.Count > 0)
                    {
                        // Thrown inside the transaction: it is rolled back, so nothing of this commit is stored.
                        throw new LeaseLostException(fence.Stale);
                    }

                    var results = new List<GenerationChange>(finishes.Count);
                    foreach (var finish in finishes)
                    {
                        // Its state only: the transition reads the text back (folded, or whole).
                        var session = (await ReadSessionAsync(connection, transaction, finish.SessionId, null, cancellationToken, StateColumns))!;
                        var (command, actor) = GenerationRules.DecideRunEnd(session, finish);
                        var transition = GenerationStateMachine.ApplyOrThrow(GenerationRules.StateOf(session), command);
                        results.Add(await WriteTransitionAsync(
                            connection, transaction, session, transition, actor,
                            new TransitionFacts { Error = finish.Error, FinishReason = finish.FinishReason, InputTokens = finish.InputTokens, ClearLease = true, OutputRead = false },
                            cancellationToken));
                    }

                    return results;
                },
                cancellationToken);
    }

    /// <summary>
    /// The recovery sweep: every running session whose lease expired (or that has none: rows from before leases), and
    /// with <see cref="RecoveryRequest.TakeOwnLeasesBack"/> every one this node holds, gets
    /// <see cref="GenerationRules.Recovery"/>: queued again (auto) or paused <c>interrupted</c> (manual), a pause or
    /// cancel acknowledged before honoured; its lease is cleared and its epoch raised.
    /// </summary>
    public Task<IReadOnlyList<GenerationChange>> RecoverAbandonedAsync(RecoveryRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return WriteAsync<IReadOnlyList<GenerationChange>>(
            async (connection, transaction) =>
            {
                var ids = new List<string>();
                await using (var select = Command(connection, transaction, $"""
                    SELECT id FROM generation_sessions
                    WHERE status = 'running'
                      AND ((({LiveLeaseExpires} IS NULL OR {LiveLeaseExpires} < $now) AND lease_holder IS NOT $node)
                           OR ($take_own AND lease_holder = $node))
                    ORDER BY id
                    """))
                {
                    select.Parameters.AddWithValue("$now", SqliteTime.Format(_time.GetUtcNow()));
                    select.Parameters.AddWithValue("$take_own", request.TakeOwnLeasesBack);
                    select.Parameters.AddWithValue("$node", request.NodeId);
                    await using var reader = await select.ExecuteReaderAsync(cancellationToken);
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        ids.Add(reader.GetString(0));
                    }
                }

                var changes = new List<GenerationChange>();
                var (command, actor) = GenerationRules.Recovery(request.Policy);
                foreach (var id in ids)
                {
                    var session = (await ReadSessionAsync(connection, transaction, id, null, cancellationToken))!;
                    var transition = GenerationStateMachine.ApplyOrThrow(GenerationRules.StateOf(session), command);
                    changes.Add(await WriteTransitionAsync(
                        connection, transaction, session, transition, actor, new TransitionFacts { ClearLease = true, RaiseEpoch = true }, cancellationToken));
                }

                return changes;
            },
            cancellationToken);
    }

    /// <summary>
    /// The <see cref="GenerationOptions.LogRetention"/> sweep: for at most <paramref name="limit"/> sessions that became
    /// <c>completed</c> or <c>cancelled</c> before <paramref name="finishedBefore"/>, merges all chunk rows into one
    /// chunk event holding the materialized output, at the seq of the last chunk (status events stay), and records
    /// <c>log_compacted_at</c> with an audit event. Returns how many sessions it compacted.
    /// </summary>
    public Task<int> CompactFinishedLogsAsync(DateTimeOffset finishedBefore, int limit, CancellationToken cancellationToken = default) =>
        WriteAsync(
            async (connection, transaction) =>
            {
                var due = new List<(string Id, string Status, string Output)>();
                await using (var select = Command(connection, transaction, $"""
                    SELECT id, status, {WholeOutput} FROM generation_sessions
                    WHERE completed_at IS NOT NULL AND log_compacted_at IS NULL AND completed_at < $before
                      AND status IN ('completed', 'cancelled')
                    ORDER BY completed_at
                    LIMIT $limit
                    """))
                {
                    select.Parameters.AddWithValue("$before", SqliteTime.Format(finishedBefore));
                    select.Parameters.AddWithValue("$limit", limit);
                    await using var reader = await select.ExecuteReaderAsync(cancellationToken);
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        due.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
                    }
                }

                var now = _time.GetUtcNow();
                var actor = Actor.System("retention", "Generation:LogRetention");
                foreach (var (id, status, output) in due)
                {
                    long chunks;
                    long? lastChunk;
                    await using (var count = Command(connection, transaction, "SELECT count(*), max(seq) FROM generation_log WHERE session_id = $id AND type = 'chunk'"))
                    {
                        count.Parameters.AddWithValue("$id", id);
                        await using var reader = await count.ExecuteReaderAsync(cancellationToken);
                        await reader.ReadAsync(cancellationToken);
                        chunks = reader.GetInt64(0);
                        lastChunk = await reader.IsDBNullAsync(1, cancellationToken) ? null : reader.GetInt64(1);
                    }

                    if (chunks > 1 && lastChunk is { } last)
                    {
                        await using (var delete = Command(connection, transaction, "DELETE FROM generation_log WHERE session_id = $id AND type = 'chunk'"))
                        {
                            delete.Parameters.AddWithValue("$id", id);
                            await delete.ExecuteNonQueryAsync(cancellationToken);
                        }

                        await InsertLogAsync(connection, transaction, id, last, GenerationLogEventType.Chunk, output, cancellationToken);
                    }

                    await using (var mark = Command(connection, transaction, "UPDATE generation_sessions SET log_compacted_at = $now WHERE id = $id"))
                    {
                        mark.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                        mark.Parameters.AddWithValue("$id", id);
                        await mark.ExecuteNonQueryAsync(cancellationToken);
                    }

                    await SqliteAudit.AppendAsync(
                        connection, transaction, SessionKind.Generation, id, actor, AuditActions.CompactLog, status, status, now,
                        string.Create(CultureInfo.InvariantCulture, $"{chunks} chunk events merged into one"), cancellationToken);
                }

                return due.Count;
            },
            cancellationToken);

    /// <summary>Records that <paramref name="nodeId"/> stopped gracefully.</summary>
    public Task MarkNodeStoppedAsync(string nodeId, CancellationToken cancellationToken = default) =>
        WriteAsync(
            async (connection, transaction) =>
            {
                await using var command = Command(connection, transaction, "UPDATE cluster_nodes SET stopped_at = $now WHERE node_id = $node");
                command.Parameters.AddWithValue("$now", SqliteTime.Format(_time.GetUtcNow()));
                command.Parameters.AddWithValue("$node", nodeId);
                return await command.ExecuteNonQueryAsync(cancellationToken);
            },
            cancellationToken);

    /// <summary>Every node that renewed on this database (on SQLite, this one), with the running sessions it holds.</summary>
    public Task<IReadOnlyList<ClusterNode>> ListNodesAsync(CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<ClusterNode>>(
            async connection =>
            {
                await using var command = Command(connection, null, """
                    SELECT n.node_id, n.started_at, n.heartbeat_at, n.stopped_at,
                           (SELECT count(*) FROM generation_sessions s WHERE s.lease_holder = n.node_id AND s.status = 'running')
                    FROM cluster_nodes n ORDER BY n.node_id
                    """);
                var nodes = new List<ClusterNode>();
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    nodes.Add(new ClusterNode(
                        reader.GetString(0),
                        SqliteTime.Parse(reader.GetString(1)),
                        SqliteTime.Parse(reader.GetString(2)),
                        await reader.IsDBNullAsync(3, cancellationToken) ? null : SqliteTime.Parse(reader.GetString(3)),
                        reader.GetInt32(4)));
                }

                return nodes;
            },
            cancellationToken);

    /// <summary>The holder of a running session, or null.</summary>
    public Task<LeaseHolder?> FindHolderAsync(string sessionId, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async connection =>
            {
                await using var command = Command(
                    connection, null, $"SELECT lease_holder, lease_epoch, {LiveLeaseExpires} FROM generation_sessions WHERE id = $id AND status = 'running' AND lease_holder IS NOT NULL AND {LiveLeaseExpires} IS NOT NULL");
                command.Parameters.AddWithValue("$id", sessionId);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                return await reader.ReadAsync(cancellationToken) ? new LeaseHolder(reader.GetString(0), reader.GetInt64(1), SqliteTime.Parse(reader.GetString(2))) : null;
            },
            cancellationToken);

    /// <summary>Running sessions held by <paramref name="nodeId"/> whose desired state is no longer <c>running</c> (a pause or cancel to reconcile).</summary>
    public Task<IReadOnlyList<string>> ListStopRequestedAsync(string nodeId, CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<string>>(
            async connection =>
            {
                await using var command = Command(connection, null, "SELECT id FROM generation_sessions WHERE status = 'running' AND desired_state <> 'running' AND lease_holder = $node");
                command.Parameters.AddWithValue("$node", nodeId);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                var ids = new List<string>();
                while (await reader.ReadAsync(cancellationToken))
                {
                    ids.Add(reader.GetString(0));
                }

                return ids;
            },
            cancellationToken);

    /// <summary>Log rows after <paramref name="afterSeq"/> without an owner check (for followers already authorised).</summary>
    public Task<IReadOnlyList<GenerationLogEvent>> ReadLogAfterAsync(string id, long afterSeq, int limit, CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<GenerationLogEvent>>(async connection => await ReadLogRowsAsync(connection, id, afterSeq, limit, cancellationToken), cancellationToken);

    /// <summary>The highest committed log seq of the session (0 when none).</summary>
    public Task<long> ReadDurableSeqAsync(string id, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async connection =>
            {
                await using var command = Command(connection, null, "SELECT COALESCE(MAX(seq), 0) FROM generation_log WHERE session_id = $id");
                command.Parameters.AddWithValue("$id", id);
                return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
            },
            cancellationToken);

    /// <summary>
    /// The seq of the one chunk event a compacted log (<see cref="GenerationOptions.LogRetention"/>) holds its whole
    /// output in, or null when the session's log was not compacted.
    /// </summary>
    public Task<long?> ReadCompactedChunkSeqAsync(string id, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async connection =>
            {
                await using var command = Command(connection, null, """
                    SELECT (SELECT max(seq) FROM generation_log WHERE session_id = s.id AND type = 'chunk')
                    FROM generation_sessions s WHERE s.id = $id AND s.log_compacted_at IS NOT NULL
                    """);
                command.Parameters.AddWithValue("$id", id);
                return await command.ExecuteScalarAsync(cancellationToken) is long seq ? seq : (long?)null;
            },
            cancellationToken);

    private async Task<GenerationCreateResult> CreateInTransactionAsync(
        SqliteConnection connection, SqliteTransaction transaction, NewGeneration row, Actor actor, CancellationToken cancellationToken)
    {
        if (row.IdempotencyKey is not null)
        {
            var existing = await ReadByIdempotencyKeyAsync(connection, transaction, row.Owner, row.IdempotencyKey, cancellationToken);
            if (existing is not null)
            {
                GenerationRules.CheckIdempotentRetry(row.IdempotencyKey, existing.Session, existing.RequestHash, row.RequestHash);
                return new GenerationCreateResult(new GenerationChange(existing.Session, null, false), false);
            }
        }

        if (row.PreviousSessionId is not null && row.ForkedFrom is null)
        {
            await using var previous = Command(connection, transaction, "SELECT 1 FROM generation_sessions WHERE id = $id AND owner = $owner");
            previous.Parameters.AddWithValue("$id", row.PreviousSessionId);
            previous.Parameters.AddWithValue("$owner", row.Owner);
            if (await previous.ExecuteScalarAsync(cancellationToken) is null)
            {
                throw new InvalidSessionInputException("previous_session_id", $"'previous_session_id' names session '{row.PreviousSessionId}', which was not found.");
            }
        }

        var now = SqliteTime.Format(_time.GetUtcNow());
        var hasPrefix = row.InitialOutput.Length > 0;
        var queuedSeq = hasPrefix ? 2 : 1;
        await using (var insert = Command(connection, transaction, """
            INSERT INTO generation_sessions (
                id, owner, backend, model, input, parameters, metadata, status, desired_state, output, output_tokens, last_seq, output_seq,
                previous_session_id, forked_from, forked_at_seq, idempotency_key, request_hash, created_at, updated_at, version)
            VALUES ($id, $owner, $backend, $model, $input, $parameters, $metadata, 'queued', 'running', $output, $output_tokens, $last_seq, $last_seq,
                $previous, $forked_from, $forked_at_seq, $key, $hash, $now, $now, 1)
            """))
        {
            insert.Parameters.AddWithValue("$id", row.Id);
            insert.Parameters.AddWithValue("$owner", row.Owner);
            insert.Parameters.AddWithValue("$backend", row.Backend);
            insert.Parameters.AddWithValue("$model", row.Model);
            insert.Parameters.AddWithValue("$input", GenerationJson.Serialize(row.Input));
            insert.Parameters.AddWithValue("$parameters", GenerationJson.Serialize(row.Parameters));
            insert.Parameters.AddWithValue("$metadata", row.Metadata is null ? DBNull.Value : GenerationJson.Serialize(row.Metadata));
            insert.Parameters.AddWithValue("$output", row.InitialOutput);
            insert.Parameters.AddWithValue("$output_tokens", row.InitialOutputTokens);
            insert.Parameters.AddWithValue("$last_seq", queuedSeq);
            insert.Parameters.AddWithValue("$previous", (object?)row.PreviousSessionId ?? DBNull.Value);
            insert.Parameters.AddWithValue("$forked_from", (object?)row.ForkedFrom ?? DBNull.Value);
            insert.Parameters.AddWithValue("$forked_at_seq", (object?)row.ForkedAtSeq ?? DBNull.Value);
            insert.Parameters.AddWithValue("$key", (object?)row.IdempotencyKey ?? DBNull.Value);
            insert.Parameters.AddWithValue("$hash", (object?)row.RequestHash ?? DBNull.Value);
            insert.Parameters.AddWithValue("$now", now);
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        if (hasPrefix)
        {
            await InsertLogAsync(connection, transaction, row.Id, 1, GenerationLogEventType.Chunk, row.InitialOutput, cancellationToken);
        }

        var queued = new GenerationStatusChange(GenerationStatus.Queued);
        await InsertLogAsync(connection, transaction, row.Id, queuedSeq, GenerationLogEventType.Status, GenerationJson.Serialize(queued), cancellationToken);
        await SqliteAudit.AppendAsync(
            connection, transaction, SessionKind.Generation, row.Id, actor, row.ForkedFrom is null ? AuditActions.Create : AuditActions.Fork, null, "queued",
            _time.GetUtcNow(), GenerationRules.CreateDetail(row, actor), cancellationToken);
        // A new row is folded up to its last event (output_seq = last_seq): its output is its whole text.
        var session = (await ReadSessionAsync(connection, transaction, row.Id, null, cancellationToken, FoldedColumns))!;
        return new GenerationCreateResult(new GenerationChange(session, GenerationLogEvent.Status(row.Id, queuedSeq, queued), true), true);
    }

    private sealed record TransitionFacts
    {
        public bool NewAttempt { get; init; }

        public string? Continuation { get; init; }

        public string? Error { get; init; }

        public string? FinishReason { get; init; }

        public long? InputTokens { get; init; }

        /// <summary>A claim: the new lease's holder and expiry (the epoch is raised).</summary>
        public (string Node, DateTimeOffset Expires)? Lease { get; init; }

        /// <summary>The run ended or was recovered: nobody holds the session any more.</summary>
        public bool ClearLease { get; init; }

        /// <summary>Recovery: raise the epoch so a write of the run that is gone is refused.</summary>
        public bool RaiseEpoch { get; init; }

        /// <summary>The session given to the transition holds its whole output (false: read with its state only).</summary>
        public bool OutputRead { get; init; } = true;
    }

    private async Task<GenerationChange> WriteTransitionAsync(
        SqliteConnection connection,
        SqliteTransaction transaction,
        GenerationSession session,
        GenerationTransition transition,
        Actor actor,
        TransitionFacts facts,
        CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var to = transition.To;
        var statusEvent = GenerationRules.StatusEventFor(transition, facts.Error, facts.FinishReason) is { } change
            ? GenerationLogEvent.Status(session.Id, session.LastSeq + 1, change)
            : null;
        var final = to.Status is GenerationStatus.Completed or GenerationStatus.Cancelled;

        if (session.Status == GenerationStatus.Running)
        {
            // The run's progress row holds the counters the group commits advanced: the session row takes them first.
            await using var sync = Command(connection, transaction, """
                UPDATE generation_sessions SET last_seq = p.last_seq, output_tokens = p.output_tokens, lease_expires_at = p.lease_expires_at
                FROM generation_progress p
                WHERE p.session_id = generation_sessions.id AND generation_sessions.id = $id
                  AND (generation_sessions.last_seq <> p.last_seq OR generation_sessions.output_tokens <> p.output_tokens
                       OR generation_sessions.lease_expires_at IS NOT p.lease_expires_at)
                """);
            sync.Parameters.AddWithValue("$id", session.Id);
            await sync.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var update = Command(connection, transaction, """
            UPDATE generation_sessions SET
                output = CASE WHEN $status_changed = 0 OR output_seq >= last_seq THEN output ELSE output
                    || COALESCE((SELECT group_concat(t.payload, '' ORDER BY t.seq) FROM generation_log t
                                 WHERE t.session_id = $id AND t.seq > output_seq AND t.type = 'chunk'), '') END,
                output_seq = CASE WHEN $status_changed = 0 THEN output_seq ELSE last_seq + 1 END,
                status = $status,
                desired_state = $desired,
                pause_reason = $pause_reason,
                error = CASE WHEN $set_error THEN $error ELSE error END,
                finish_reason = COALESCE($finish_reason, finish_reason),
                input_tokens = COALESCE($input_tokens, input_tokens),
                continuation = CASE WHEN $new_attempt THEN $continuation ELSE continuation END,
                attempts = attempts + $new_attempt,
                last_seq = last_seq + $status_changed,
                updated_at = $now,
                completed_at = CASE WHEN $final THEN $now ELSE completed_at END,
                lease_holder = CASE WHEN $lease_node IS NOT NULL THEN $lease_node WHEN $clear_lease THEN NULL ELSE lease_holder END,
                lease_expires_at = CASE WHEN $lease_node IS NOT NULL THEN $lease_expires WHEN $clear_lease THEN NULL ELSE lease_expires_at END,
                lease_epoch = lease_epoch + $raise_epoch,
                version = version + 1
            WHERE id = $id AND status = $old_status AND version = $old_version
            """))
        {
            update.Parameters.AddWithValue("$status", to.Status.ToWire());
            update.Parameters.AddWithValue("$desired", to.Desired.ToWire());
            update.Parameters.AddWithValue("$pause_reason", to.Status == GenerationStatus.Paused || to.Desired == GenerationDesiredState.Paused ? (object?)to.PauseReason ?? DBNull.Value : DBNull.Value);
            update.Parameters.AddWithValue("$set_error", to.Status == GenerationStatus.Failed);
            update.Parameters.AddWithValue("$error", (object?)facts.Error ?? DBNull.Value);
            update.Parameters.AddWithValue("$finish_reason", to.Status == GenerationStatus.Completed ? (object?)facts.FinishReason ?? DBNull.Value : DBNull.Value);
            update.Parameters.AddWithValue("$input_tokens", (object?)facts.InputTokens ?? DBNull.Value);
            update.Parameters.AddWithValue("$new_attempt", facts.NewAttempt ? 1 : 0);
            update.Parameters.AddWithValue("$continuation", (object?)facts.Continuation ?? DBNull.Value);
            update.Parameters.AddWithValue("$status_changed", statusEvent is null ? 0 : 1);
            update.Parameters.AddWithValue("$now", SqliteTime.Format(now));
            update.Parameters.AddWithValue("$final", final);
            update.Parameters.AddWithValue("$lease_node", (object?)facts.Lease?.Node ?? DBNull.Value);
            update.Parameters.AddWithValue("$lease_expires", facts.Lease is { } lease ? SqliteTime.Format(lease.Expires) : DBNull.Value);
            update.Parameters.AddWithValue("$clear_lease", facts.ClearLease);
            update.Parameters.AddWithValue("$raise_epoch", facts.Lease is not null || facts.RaiseEpoch ? 1 : 0);
            update.Parameters.AddWithValue("$id", session.Id);
            update.Parameters.AddWithValue("$old_status", session.Status.ToWire());
            update.Parameters.AddWithValue("$old_version", session.Version);
            if (await update.ExecuteNonQueryAsync(cancellationToken) != 1)
            {
                throw new SessionConflictException($"Session '{session.Id}' was changed concurrently; reload it and retry.", session.Status.ToWire(), to.Status.ToWire());
            }
        }

        if (statusEvent is not null)
        {
            await InsertLogAsync(connection, transaction, session.Id, statusEvent.Seq, GenerationLogEventType.Status, GenerationJson.Serialize(statusEvent.StatusChange), cancellationToken);
        }

        await WriteProgressAsync(connection, transaction, session.Id, running: to.Status == GenerationStatus.Running, cancellationToken);

        var detail = GenerationRules.TransitionDetail(transition, actor, facts.Error);
        await SqliteAudit.AppendAsync(
            connection, transaction, SessionKind.Generation, session.Id, actor, AuditActions.For(transition.Command.Kind),
            transition.From.ToString(), to.ToString(), now, detail, cancellationToken);
        // A transition adds no text. A status change folded the whole text into `output`: read back as it is. Else
        // the text is the one read before, when the caller read it (a control), or the row's whole output.
        var columns = statusEvent is not null ? FoldedColumns : facts.OutputRead ? StateColumns : Columns;
        GenerationSession updated;
        await using (var read = Command(connection, transaction, $"SELECT {columns} FROM generation_sessions WHERE id = $id"))
        {
            read.Parameters.AddWithValue("$id", session.Id);
            await using var reader = await read.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            updated = ReadSession(reader);
        }

        return new GenerationChange(statusEvent is null && facts.OutputRead ? updated with { Output = session.Output } : updated, statusEvent, true);
    }

    /// <summary>
    /// Keeps the progress row of <paramref name="id"/> as its status says (after a transition): a running session's
    /// is (re)written from its row (a claim, a takeover's new epoch), any other's is removed (the run ended).
    /// </summary>
    private static async Task WriteProgressAsync(SqliteConnection connection, SqliteTransaction transaction, string id, bool running, CancellationToken cancellationToken)
    {
        await using var write = Command(connection, transaction, running
            ? """
              INSERT INTO generation_progress (session_id, lease_holder, lease_expires_at, lease_epoch, last_seq, output_tokens, output_seq)
              SELECT id, lease_holder, lease_expires_at, lease_epoch, last_seq, output_tokens, output_seq FROM generation_sessions WHERE id = $id AND status = 'running'
              ON CONFLICT (session_id) DO UPDATE SET
                  lease_holder = excluded.lease_holder, lease_expires_at = excluded.lease_expires_at, lease_epoch = excluded.lease_epoch,
                  last_seq = excluded.last_seq, output_tokens = excluded.output_tokens, output_seq = excluded.output_seq
              """
            : "DELETE FROM generation_progress WHERE session_id = $id");
        write.Parameters.AddWithValue("$id", id);
        await write.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task AppendChunksAsync(
        SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<ChunkAppend> chunks, CommitFence fence, CancellationToken cancellationToken)
    {
        // The run's progress row, fenced by the run's lease epoch and by continuity with what is stored; the session's
        // own (wide) row is written only when the text is folded into it.
        await using var advance = Command(connection, transaction, """
            UPDATE generation_progress SET last_seq = $last_seq, output_tokens = output_tokens + $count
            WHERE session_id = $id AND lease_epoch = $epoch AND last_seq = $first_seq - 1
            RETURNING output_seq, output_tokens
            """);
        var pCount = advance.Parameters.Add("$count", SqliteType.Integer);
        var pLast = advance.Parameters.Add("$last_seq", SqliteType.Integer);
        var pId = advance.Parameters.Add("$id", SqliteType.Text);
        var pEpoch = advance.Parameters.Add("$epoch", SqliteType.Integer);
        var pFirst = advance.Parameters.Add("$first_seq", SqliteType.Integer);

        await using var insert = Command(connection, transaction, "INSERT INTO generation_log (session_id, seq, type, payload) VALUES ($id, $seq, 'chunk', $text)");
        var iId = insert.Parameters.Add("$id", SqliteType.Text);
        var iSeq = insert.Parameters.Add("$seq", SqliteType.Integer);
        var iText = insert.Parameters.Add("$text", SqliteType.Text);

        var delta = new StringBuilder();
        var start = 0;
        while (start < chunks.Count)
        {
            // Chunks arrive grouped per run in seq order within a run; take one run's consecutive chunks.
            var first = chunks[start];
            var end = start + 1;
            while (end < chunks.Count && chunks[end].SessionId == first.SessionId && chunks[end].FencingToken == first.FencingToken && chunks[end].Seq == chunks[end - 1].Seq + 1)
            {
                end++;
            }

            var last = chunks[end - 1].Seq;
            pCount.Value = end - start;
            pLast.Value = last;
            pId.Value = first.SessionId;
            pEpoch.Value = first.FencingToken;
            pFirst.Value = first.Seq;
            var advanced = await AdvanceAsync(advance, cancellationToken);
            if (advanced is null && await RestoreProgressAsync(connection, transaction, first.SessionId, cancellationToken))
            {
                // A running session without its progress row (written by a version before migration 0016's rule, or
                // by hand): the row is made from the session's, and the append tried again.
                advanced = await AdvanceAsync(advance, cancellationToken);
            }

            if (advanced is { } progress)
            {
                fence.Held(first.SessionId, first.FencingToken);
                if (last - progress.OutputSeq >= FoldEvery)
                {
                    delta.Clear();
                    for (var i = start; i < end; i++)
                    {
                        delta.Append(chunks[i].Text);
                    }

                    await FoldAsync(connection, transaction, first.SessionId, last, progress.OutputTokens, delta.ToString(), cancellationToken);
                }

                iId.Value = first.SessionId;
                for (var i = start; i < end; i++)
                {
                    iSeq.Value = chunks[i].Seq;
                    iText.Value = chunks[i].Text;
                    await insert.ExecuteNonQueryAsync(cancellationToken);
                }
            }
            else
            {
                // Not appended: a stale run (the commit is refused), or a run that still holds the session but whose
                // chunks do not follow its stored output (skipped, as before: its ending is fenced by its last seq).
                await fence.CheckAsync(connection, transaction, first.SessionId, first.FencingToken, cancellationToken);
            }

            start = end;
        }
    }

    private static async Task<(long OutputSeq, long OutputTokens)?> AdvanceAsync(SqliteCommand advance, CancellationToken cancellationToken)
    {
        await using var reader = await advance.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (reader.GetInt64(0), reader.GetInt64(1)) : null;
    }

    /// <summary>
    /// The progress row of a running session <c>s</c> that has none: its row's counters are right as of the row's
    /// last_seq, and every event after that is in the log.
    /// </summary>
    private const string RestoredProgress = """
        s.id, s.lease_holder, s.lease_expires_at, s.lease_epoch,
        max(s.last_seq, COALESCE((SELECT max(t.seq) FROM generation_log t WHERE t.session_id = s.id), 0)),
        s.output_tokens + (SELECT count(*) FROM generation_log t WHERE t.session_id = s.id AND t.seq > s.last_seq AND t.type = 'chunk'),
        s.output_seq
        """;

    /// <summary>Makes the missing progress row of a running session (<see cref="RestoredProgress"/>). True when it made one.</summary>
    private static async Task<bool> RestoreProgressAsync(SqliteConnection connection, SqliteTransaction transaction, string id, CancellationToken cancellationToken)
    {
        await using var restore = Command(connection, transaction, $"""
            INSERT INTO generation_progress (session_id, lease_holder, lease_expires_at, lease_epoch, last_seq, output_tokens, output_seq)
            SELECT {RestoredProgress} FROM generation_sessions s WHERE s.id = $id AND s.status = 'running'
            ON CONFLICT (session_id) DO NOTHING
            """);
        restore.Parameters.AddWithValue("$id", id);
        return await restore.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    /// <summary>
    /// Folds a running session's tail of chunk rows (and <paramref name="delta"/>, this commit's text, not inserted
    /// yet) into its row's output, with the counters its progress row holds: once per <see cref="FoldEvery"/> events.
    /// </summary>
    private static async Task FoldAsync(
        SqliteConnection connection, SqliteTransaction transaction, string id, long lastSeq, long outputTokens, string delta, CancellationToken cancellationToken)
    {
        await using (var fold = Command(connection, transaction, """
            UPDATE generation_sessions
            SET output = output || COALESCE((SELECT group_concat(t.payload, '' ORDER BY t.seq) FROM generation_log t
                                             WHERE t.session_id = $id AND t.seq > output_seq AND t.type = 'chunk'), '') || $delta,
                output_seq = $last_seq, last_seq = $last_seq, output_tokens = $output_tokens
            WHERE id = $id
            """))
        {
            fold.Parameters.AddWithValue("$id", id);
            fold.Parameters.AddWithValue("$delta", delta);
            fold.Parameters.AddWithValue("$last_seq", lastSeq);
            fold.Parameters.AddWithValue("$output_tokens", outputTokens);
            await fold.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var mark = Command(connection, transaction, "UPDATE generation_progress SET output_seq = $last_seq WHERE session_id = $id");
        mark.Parameters.AddWithValue("$id", id);
        mark.Parameters.AddWithValue("$last_seq", lastSeq);
        await mark.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Which runs of one group commit still hold their sessions (running, with the run's lease epoch): learnt from the
    /// row counts of their output appends, or read for a run that appended nothing. Checks come before the commit's
    /// status changes, so an ending sees the lease as its run held it.
    /// </summary>
    private sealed class CommitFence
    {
        private readonly Dictionary<(string Id, long Token), bool> _known = [];

        /// <summary>The sessions whose runs in this commit no longer hold them.</summary>
        public HashSet<string> Stale { get; } = new(StringComparer.Ordinal);

        /// <summary>The run's fenced write matched its session's row: it holds the session.</summary>
        public void Held(string id, long token) => _known[(id, token)] = true;

        /// <summary>Reads whether the run holding <paramref name="token"/> still holds <paramref name="id"/> (once per run and commit).</summary>
        public async Task CheckAsync(SqliteConnection connection, SqliteTransaction transaction, string id, long token, CancellationToken cancellationToken)
        {
            if (!_known.TryGetValue((id, token), out var held))
            {
                await using var check = Command(connection, transaction, "SELECT 1 FROM generation_sessions WHERE id = $id AND lease_epoch = $epoch AND status = 'running'");
                check.Parameters.AddWithValue("$id", id);
                check.Parameters.AddWithValue("$epoch", token);
                held = await check.ExecuteScalarAsync(cancellationToken) is not null;
                _known[(id, token)] = held;
            }

            if (!held)
            {
                Stale.Add(id);
            }
        }
    }

    private static async Task<long> ReadEpochAsync(SqliteConnection connection, SqliteTransaction transaction, string id, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, "SELECT lease_epoch FROM generation_sessions WHERE id = $id");
        command.Parameters.AddWithValue("$id", id);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task InsertLogAsync(
        SqliteConnection connection, SqliteTransaction transaction, string id, long seq, GenerationLogEventType type, string payload, CancellationToken cancellationToken)
    {
        await using var insert = Command(connection, transaction, "INSERT INTO generation_log (session_id, seq, type, payload) VALUES ($id, $seq, $type, $payload)");
        insert.Parameters.AddWithValue("$id", id);
        insert.Parameters.AddWithValue("$seq", seq);
        insert.Parameters.AddWithValue("$type", type.ToWire());
        insert.Parameters.AddWithValue("$payload", payload);
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<List<GenerationLogEvent>> ReadLogRowsAsync(SqliteConnection connection, string id, long afterSeq, int limit, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, null, """
            SELECT seq, type, payload FROM generation_log WHERE session_id = $id AND seq > $after ORDER BY seq LIMIT $limit
            """);
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$after", afterSeq);
        command.Parameters.AddWithValue("$limit", limit);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var events = new List<GenerationLogEvent>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var seq = reader.GetInt64(0);
            var payload = reader.GetString(2);
            events.Add(reader.GetString(1) == "chunk"
                ? GenerationLogEvent.Chunk(id, seq, payload)
                : GenerationLogEvent.Status(id, seq, GenerationJson.Deserialize<GenerationStatusChange>(payload)));
        }

        return events;
    }

    private sealed record KeyedSession(GenerationSession Session, string? RequestHash);

    private static async Task<KeyedSession?> ReadByIdempotencyKeyAsync(
        SqliteConnection connection, SqliteTransaction? transaction, string owner, string key, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, $"SELECT {Columns}, request_hash FROM generation_sessions WHERE owner = $owner AND idempotency_key = $key");
        command.Parameters.AddWithValue("$owner", owner);
        command.Parameters.AddWithValue("$key", key);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        return new KeyedSession(ReadSession(reader), await reader.IsDBNullAsync(27, cancellationToken) ? null : reader.GetString(27));
    }

    private static async Task<GenerationSession?> ReadSessionAsync(
        SqliteConnection connection, SqliteTransaction? transaction, string id, string? ownerScope, CancellationToken cancellationToken, string columns = Columns)
    {
        await using var command = Command(connection, transaction, $"SELECT {columns} FROM generation_sessions WHERE id = $id AND ($owner IS NULL OR owner = $owner)");
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$owner", (object?)ownerScope ?? DBNull.Value);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadSession(reader) : null;
    }

    private static GenerationSession ReadSession(SqliteDataReader reader) => new()
    {
        Id = reader.GetString(0),
        Owner = reader.GetString(1),
        Backend = reader.GetString(2),
        Model = reader.GetString(3),
        Input = GenerationJson.Deserialize<List<GenerationMessage>>(reader.GetString(4)),
        Parameters = GenerationJson.Deserialize<GenerationParameters>(reader.GetString(5)),
        Metadata = reader.IsDBNull(6) ? null : GenerationJson.Deserialize<Dictionary<string, string>>(reader.GetString(6)),
        Status = GenerationNames.ParseStatus(reader.GetString(7)),
        DesiredState = GenerationNames.ParseDesired(reader.GetString(8)),
        PauseReason = reader.IsDBNull(9) ? null : reader.GetString(9),
        Error = reader.IsDBNull(10) ? null : reader.GetString(10),
        FinishReason = reader.IsDBNull(11) ? null : reader.GetString(11),
        Usage = new GenerationUsage(reader.IsDBNull(12) ? null : reader.GetInt64(12), reader.GetInt64(13)),
        PreviousSessionId = reader.IsDBNull(14) ? null : reader.GetString(14),
        ForkedFrom = reader.IsDBNull(15) ? null : reader.GetString(15),
        ForkedAtSeq = reader.IsDBNull(16) ? null : reader.GetInt64(16),
        Continuation = reader.IsDBNull(17) ? null : reader.GetString(17),
        Output = reader.GetString(18),
        LastSeq = reader.GetInt64(19),
        Attempts = reader.GetInt32(20),
        IdempotencyKey = reader.IsDBNull(21) ? null : reader.GetString(21),
        CreatedAt = SqliteTime.Parse(reader.GetString(22)),
        UpdatedAt = SqliteTime.Parse(reader.GetString(23)),
        CompletedAt = SqliteTime.ParseNullable(reader.IsDBNull(24) ? null : reader.GetString(24)),
        Version = reader.GetInt64(25),
        LogCompacted = reader.GetBoolean(26),
    };

    /// <summary>
    /// One write transaction. A SQLite error that is not the caller's (a failed audit insert, a full disk) surfaces as
    /// <see cref="StoreUnavailableException"/>: the transaction was rolled back whole. A unique violation is left to the
    /// caller (an idempotency race); a lock held too long is already a <see cref="StoreUnavailableException"/>.
    /// </summary>
    private async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken, bool priority = false)
    {
        try
        {
            return await (priority ? _database.WriteAheadAsync(work, cancellationToken) : _database.WriteAsync(work, cancellationToken));
        }
        catch (SqliteException ex) when (ex.SqliteExtendedErrorCode != SqliteUniqueViolation && ex.SqliteErrorCode is not (5 or 6))
        {
            throw new StoreUnavailableException($"The generation session change was not stored: {ex.Message.TrimEnd('.')}; nothing was changed.", ex);
        }
    }

    /// <summary>The statement for <paramref name="sql"/>, kept prepared on the connection (<see cref="SqliteDatabase.Command"/>).</summary>
    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql) =>
        SqliteDatabase.Command(connection, transaction, sql);
}
