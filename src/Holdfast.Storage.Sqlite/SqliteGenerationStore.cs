using System.Globalization;
using System.Text;
using Holdfast.Generation;
using Holdfast.Sessions;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary>A session to insert (a new start or a fork).</summary>
internal sealed record NewGenerationRow(
    string Id,
    string Owner,
    string Backend,
    string Model,
    IReadOnlyList<GenerationMessage> Input,
    GenerationParameters Parameters,
    IReadOnlyDictionary<string, string>? Metadata,
    string? PreviousSessionId,
    string? IdempotencyKey,
    string? RequestHash,
    string? ForkedFrom = null,
    long? ForkedAtSeq = null,
    string InitialOutput = "",
    long InitialOutputTokens = 0);

/// <summary>A queued session the runner may claim.</summary>
internal sealed record ClaimCandidate(string Id, string Backend, bool HasOutput);

/// <summary>A chunk produced by run <see cref="Attempt"/> of a session, waiting for its group commit.</summary>
internal sealed record ChunkAppend(string SessionId, int Attempt, long Seq, string Text);

/// <summary>
/// How a run ended, written after its last chunks in the same group commit. <see cref="LastSeq"/> is the seq of the
/// run's last chunk (or of its claim when it produced none): a <see cref="GenerationCommandKind.Complete"/> is only
/// written when the stored log reaches it; when chunks were lost (a group commit given up) the session is
/// interrupted under <see cref="Recovery"/> instead, so the next run regenerates the missing text.
/// </summary>
internal sealed record RunFinish(
    string SessionId,
    int Attempt,
    GenerationCommand Command,
    long LastSeq,
    string? Error = null,
    string? FinishReason = null,
    long? InputTokens = null,
    GenerationRecoveryPolicy Recovery = GenerationRecoveryPolicy.Auto);

/// <summary>The session after a change, and the status event it wrote (null when the status did not change).</summary>
internal sealed record GenerationChange(GenerationSession Session, GenerationLogEvent? StatusEvent, bool Changed);

/// <summary>
/// Generation sessions in SQLite: the session row with its materialized output, the ordered event log, and the
/// audit event of every change, each written in one transaction through <see cref="SqliteDatabase.WriteAsync{T}"/>.
/// Status changes are compare-and-swap on (status, version); runner writes are fenced by the run's attempt number.
/// </summary>
internal sealed class SqliteGenerationStore
{
    private const string Columns = """
        id, owner, backend, model, input, parameters, metadata, status, desired_state, pause_reason, error, finish_reason,
        input_tokens, output_tokens, previous_session_id, forked_from, forked_at_seq, continuation, output, last_seq,
        attempts, idempotency_key, created_at, updated_at, completed_at, version
        """;

    private static readonly Actor RunnerActor = Actor.System("runner");

    private readonly SqliteDatabase _database;
    private readonly TimeProvider _time;

    public SqliteGenerationStore(SqliteDatabase database, TimeProvider time)
    {
        _database = database;
        _time = time;
    }

    /// <summary>Inserts a session (queued), or returns the one already started with the same idempotency key.</summary>
    public async Task<(GenerationChange Change, bool Created)> CreateAsync(NewGenerationRow row, Actor actor, CancellationToken cancellationToken = default)
    {
        try
        {
            return await _database.WriteAsync((connection, transaction) => CreateInTransactionAsync(connection, transaction, row, actor, cancellationToken), cancellationToken);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == 19 && row.IdempotencyKey is not null)
        {
            // Another process inserted the same key between our check and insert: return its session.
            var existing = await FindByIdempotencyKeyAsync(row.Owner, row.IdempotencyKey, cancellationToken)
                ?? throw new SessionConflictException("A session with this Idempotency-Key is being created; retry the request.");
            return (new GenerationChange(existing, null, false), false);
        }
    }

    /// <summary>Creates a new queued session whose output starts with the output of <paramref name="parentId"/> up to <paramref name="atSeq"/>.</summary>
    public Task<GenerationChange> ForkAsync(string parentId, string? ownerScope, long? atSeq, string newId, Actor actor, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction) =>
            {
                var parent = await ReadSessionAsync(connection, transaction, parentId, ownerScope, cancellationToken)
                    ?? throw new SessionNotFoundException(SessionKind.Generation, parentId);
                var at = atSeq ?? parent.LastSeq;
                if (at < 0 || at > parent.LastSeq)
                {
                    throw new InvalidSessionInputException(
                        "at_seq",
                        $"'at_seq' must be between 0 and {parent.LastSeq.ToString(CultureInfo.InvariantCulture)} (the last persisted event of session '{parentId}'); it is {at.ToString(CultureInfo.InvariantCulture)}.");
                }

                if (at > 0 && at < parent.LastSeq && await IsLogCompactedAsync(connection, transaction, parentId, cancellationToken))
                {
                    throw new InvalidSessionInputException(
                        "at_seq",
                        $"The event log of session '{parentId}' was compacted (Generation:LogRetention), so its chunk boundaries are gone; fork it at 0 or at {parent.LastSeq.ToString(CultureInfo.InvariantCulture)} (its whole output).");
                }

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

                var row = new NewGenerationRow(
                    newId, parent.Owner, parent.Backend, parent.Model, parent.Input, parent.Parameters, parent.Metadata,
                    parent.PreviousSessionId, IdempotencyKey: null, RequestHash: null, ForkedFrom: parent.Id, ForkedAtSeq: at,
                    InitialOutput: prefix.ToString(), InitialOutputTokens: at == parent.LastSeq ? parent.Usage.OutputTokens : chunks);
                var (change, _) = await CreateInTransactionAsync(connection, transaction, row, actor, cancellationToken);
                return change;
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
        _database.WriteAsync(
            async (connection, transaction) =>
            {
                var session = await ReadSessionAsync(connection, transaction, id, ownerScope, cancellationToken)
                    ?? throw new SessionNotFoundException(SessionKind.Generation, id);
                var transition = GenerationStateMachine.ApplyOrThrow(StateOf(session), command);
                if (!transition.Changed)
                {
                    return new GenerationChange(session, null, false);
                }

                if (expectedVersion is { } expected && expected != session.Version)
                {
                    throw new SessionConflictException(
                        $"The session changed since version {expected.ToString(CultureInfo.InvariantCulture)} (it is now version {session.Version.ToString(CultureInfo.InvariantCulture)}, {StateOf(session)}); reload it and retry.",
                        session.Status.ToWire(),
                        transition.To.Status.ToWire());
                }

                return await WriteTransitionAsync(connection, transaction, session, transition, actor, new TransitionFacts(), cancellationToken);
            },
            cancellationToken);

    /// <summary>Deletes a session that is not running, with its event log. The audit trail keeps a <c>delete</c> event.</summary>
    public Task<bool> DeleteAsync(string id, string? ownerScope, Actor actor, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction) =>
            {
                var session = await ReadSessionAsync(connection, transaction, id, ownerScope, cancellationToken)
                    ?? throw new SessionNotFoundException(SessionKind.Generation, id);
                if (session.Status == GenerationStatus.Running)
                {
                    throw new SessionConflictException("The session is running; pause or cancel it before deleting it.", "running", "deleted");
                }

                await using var delete = Command(connection, transaction, "DELETE FROM generation_sessions WHERE id = $id AND version = $version");
                delete.Parameters.AddWithValue("$id", id);
                delete.Parameters.AddWithValue("$version", session.Version);
                await delete.ExecuteNonQueryAsync(cancellationToken);
                await SqliteAudit.AppendAsync(connection, transaction, SessionKind.Generation, id, actor, "delete", session.Status.ToWire(), null, _time.GetUtcNow(), cancellationToken: cancellationToken);
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
    /// Claims queued sessions for this runner in one transaction: for each candidate (oldest first, at most
    /// <paramref name="limit"/> per backend, so a long queue on one backend never starves another) that
    /// <paramref name="choose"/> accepts, queued → running, attempts + 1, with the continuation mode it returns.
    /// </summary>
    public Task<IReadOnlyList<GenerationChange>> ClaimRunnableAsync(
        Func<ClaimCandidate, (bool Take, string? Continuation)> choose, int limit, CancellationToken cancellationToken = default) =>
        _database.WriteAsync<IReadOnlyList<GenerationChange>>(
            async (connection, transaction) =>
            {
                var candidates = new List<ClaimCandidate>();
                await using (var select = Command(connection, transaction, """
                    SELECT id, backend, has_output FROM (
                        SELECT id, backend, length(output) > 0 AS has_output,
                               row_number() OVER (PARTITION BY backend ORDER BY id) AS position
                        FROM generation_sessions
                        WHERE status = 'queued' AND desired_state = 'running')
                    WHERE position <= $limit
                    ORDER BY id
                    """))
                {
                    select.Parameters.AddWithValue("$limit", limit);
                    await using var reader = await select.ExecuteReaderAsync(cancellationToken);
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        candidates.Add(new ClaimCandidate(reader.GetString(0), reader.GetString(1), reader.GetBoolean(2)));
                    }
                }

                var claimed = new List<GenerationChange>();
                foreach (var candidate in candidates)
                {
                    var (take, continuation) = choose(candidate);
                    if (!take)
                    {
                        continue;
                    }

                    var session = await ReadSessionAsync(connection, transaction, candidate.Id, null, cancellationToken);
                    if (session is null)
                    {
                        continue;
                    }

                    var result = GenerationStateMachine.Apply(StateOf(session), GenerationCommand.Claim);
                    if (result.Transition is not { } transition)
                    {
                        continue;
                    }

                    claimed.Add(await WriteTransitionAsync(
                        connection, transaction, session, transition, RunnerActor,
                        new TransitionFacts { NewAttempt = true, Continuation = continuation }, cancellationToken));
                }

                return claimed;
            },
            cancellationToken);

    /// <summary>
    /// One group commit: appends every chunk (one log row each, one output append per session with the coalesced
    /// text), then writes each finished run's status. Writes of a run that no longer owns its session (other
    /// attempt, or not running) are skipped. Returns the finished runs' changes (null for a skipped finish).
    /// </summary>
    public Task<IReadOnlyList<GenerationChange?>> CommitAsync(
        IReadOnlyList<ChunkAppend> chunks, IReadOnlyList<RunFinish> finishes, CancellationToken cancellationToken = default) =>
        _database.WriteAsync<IReadOnlyList<GenerationChange?>>(
            async (connection, transaction) =>
            {
                if (chunks.Count > 0)
                {
                    await AppendChunksAsync(connection, transaction, chunks, cancellationToken);
                }

                var results = new List<GenerationChange?>(finishes.Count);
                foreach (var finish in finishes)
                {
                    var session = await ReadSessionAsync(connection, transaction, finish.SessionId, null, cancellationToken);
                    if (session is null || session.Attempts != finish.Attempt || session.Status != GenerationStatus.Running)
                    {
                        results.Add(null);
                        continue;
                    }

                    var command = finish.Command;
                    var actor = RunnerActor;
                    if (command.Kind == GenerationCommandKind.Complete && session.LastSeq != finish.LastSeq)
                    {
                        // The run produced more than the log holds (a group commit was given up): never complete with a gap.
                        command = GenerationCommand.Interrupt(finish.Recovery);
                        actor = Actor.System(
                            "runner",
                            string.Create(CultureInfo.InvariantCulture, $"output lost in a failed group commit (stored up to seq {session.LastSeq}, produced up to {finish.LastSeq}); regenerated by the next run"));
                    }

                    var transition = GenerationStateMachine.ApplyOrThrow(StateOf(session), command);
                    results.Add(await WriteTransitionAsync(
                        connection, transaction, session, transition, actor,
                        new TransitionFacts { Error = finish.Error, FinishReason = finish.FinishReason, InputTokens = finish.InputTokens },
                        cancellationToken));
                }

                return results;
            },
            cancellationToken);

    /// <summary>
    /// The recovery sweep: every session left <c>running</c> (by a process that is gone) is queued again
    /// (<see cref="GenerationRecoveryPolicy.Auto"/>) or paused with reason <c>interrupted</c> (manual); a pause or
    /// cancel that was acknowledged before the crash is honoured.
    /// </summary>
    public Task<IReadOnlyList<GenerationChange>> RecoverInterruptedAsync(GenerationRecoveryPolicy policy, CancellationToken cancellationToken = default) =>
        _database.WriteAsync<IReadOnlyList<GenerationChange>>(
            async (connection, transaction) =>
            {
                var ids = new List<string>();
                await using (var select = Command(connection, transaction, "SELECT id FROM generation_sessions WHERE status = 'running' ORDER BY id"))
                await using (var reader = await select.ExecuteReaderAsync(cancellationToken))
                {
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        ids.Add(reader.GetString(0));
                    }
                }

                var changes = new List<GenerationChange>();
                var actor = Actor.System("recovery", policy == GenerationRecoveryPolicy.Manual ? "recovery policy manual" : "recovery policy auto");
                foreach (var id in ids)
                {
                    var session = (await ReadSessionAsync(connection, transaction, id, null, cancellationToken))!;
                    var transition = GenerationStateMachine.ApplyOrThrow(StateOf(session), GenerationCommand.Interrupt(policy));
                    changes.Add(await WriteTransitionAsync(connection, transaction, session, transition, actor, new TransitionFacts(), cancellationToken));
                }

                return changes;
            },
            cancellationToken);

    /// <summary>
    /// The <see cref="GenerationOptions.LogRetention"/> sweep: for at most <paramref name="limit"/> sessions that became
    /// <c>completed</c> or <c>cancelled</c> before <paramref name="finishedBefore"/>, merges all chunk rows into one
    /// chunk event holding the materialized output, at the seq of the last chunk (status events stay), and records
    /// <c>log_compacted_at</c> with an audit event. Returns how many sessions it compacted.
    /// </summary>
    public Task<int> CompactFinishedLogsAsync(DateTimeOffset finishedBefore, int limit, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction) =>
            {
                var due = new List<(string Id, string Status, string Output)>();
                await using (var select = Command(connection, transaction, """
                    SELECT id, status, output FROM generation_sessions
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
                        connection, transaction, SessionKind.Generation, id, actor, "compact_log", status, status, now,
                        string.Create(CultureInfo.InvariantCulture, $"{chunks} chunk events merged into one"), cancellationToken);
                }

                return due.Count;
            },
            cancellationToken);

    /// <summary>Running sessions whose desired state is no longer <c>running</c> (a pause or cancel to reconcile).</summary>
    public Task<IReadOnlyList<string>> ListStopRequestedAsync(CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<string>>(
            async connection =>
            {
                await using var command = Command(connection, null, "SELECT id FROM generation_sessions WHERE status = 'running' AND desired_state <> 'running'");
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
    public Task<List<GenerationLogEvent>> ReadLogUncheckedAsync(string id, long afterSeq, int limit, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(connection => ReadLogRowsAsync(connection, id, afterSeq, limit, cancellationToken), cancellationToken);

    /// <summary>
    /// The seq of the one chunk event a compacted log (<see cref="GenerationOptions.LogRetention"/>) holds its whole
    /// output in, or null when the session's log was not compacted.
    /// </summary>
    public Task<long?> ReadCompactedChunkSeqAsync(string id, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    SELECT (SELECT max(seq) FROM generation_log WHERE session_id = s.id AND type = 'chunk')
                    FROM generation_sessions s WHERE s.id = $id AND s.log_compacted_at IS NOT NULL
                    """;
                command.Parameters.AddWithValue("$id", id);
                return await command.ExecuteScalarAsync(cancellationToken) is long seq ? seq : (long?)null;
            },
            cancellationToken);

    internal static GenerationState StateOf(GenerationSession session) => new(session.Status, session.DesiredState, session.PauseReason);

    private async Task<(GenerationChange, bool)> CreateInTransactionAsync(
        SqliteConnection connection, SqliteTransaction transaction, NewGenerationRow row, Actor actor, CancellationToken cancellationToken)
    {
        if (row.IdempotencyKey is not null)
        {
            var existing = await ReadByIdempotencyKeyAsync(connection, transaction, row.Owner, row.IdempotencyKey, cancellationToken);
            if (existing is not null)
            {
                if (!string.Equals(existing.RequestHash, row.RequestHash, StringComparison.Ordinal))
                {
                    throw new SessionConflictException(
                        $"The Idempotency-Key '{row.IdempotencyKey}' was already used for a different request (session '{existing.Session.Id}'); use a new key for a new generation.");
                }

                return (new GenerationChange(existing.Session, null, false), false);
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
                id, owner, backend, model, input, parameters, metadata, status, desired_state, output, output_tokens, last_seq,
                previous_session_id, forked_from, forked_at_seq, idempotency_key, request_hash, created_at, updated_at, version)
            VALUES ($id, $owner, $backend, $model, $input, $parameters, $metadata, 'queued', 'running', $output, $output_tokens, $last_seq,
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
        var detail = row.ForkedFrom is null ? actor.Reason : $"forked from {row.ForkedFrom} at seq {row.ForkedAtSeq?.ToString(CultureInfo.InvariantCulture)}";
        await SqliteAudit.AppendAsync(
            connection, transaction, SessionKind.Generation, row.Id, actor, row.ForkedFrom is null ? "create" : "fork", null, "queued",
            _time.GetUtcNow(), detail, cancellationToken);
        var session = (await ReadSessionAsync(connection, transaction, row.Id, null, cancellationToken))!;
        return (new GenerationChange(session, GenerationLogEvent.Status(row.Id, queuedSeq, queued), true), true);
    }

    private sealed record TransitionFacts
    {
        public bool NewAttempt { get; init; }

        public string? Continuation { get; init; }

        public string? Error { get; init; }

        public string? FinishReason { get; init; }

        public long? InputTokens { get; init; }
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
        var statusEvent = transition.StatusChanged
            ? GenerationLogEvent.Status(session.Id, session.LastSeq + 1, new GenerationStatusChange(
                to.Status,
                to.Status == GenerationStatus.Paused ? to.PauseReason : null,
                to.Status == GenerationStatus.Failed ? facts.Error : null,
                to.Status == GenerationStatus.Completed ? facts.FinishReason : null))
            : null;
        var final = to.Status is GenerationStatus.Completed or GenerationStatus.Cancelled;

        await using (var update = Command(connection, transaction, """
            UPDATE generation_sessions SET
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

        var detail = facts.Error ?? (transition.Command.Kind == GenerationCommandKind.Pause ? to.PauseReason : null) ?? actor.Reason;
        await SqliteAudit.AppendAsync(
            connection, transaction, SessionKind.Generation, session.Id, actor, transition.Command.Name,
            transition.From.ToString(), to.ToString(), now, detail, cancellationToken);
        var updated = (await ReadSessionAsync(connection, transaction, session.Id, null, cancellationToken))!;
        return new GenerationChange(updated, statusEvent, true);
    }

    private static async Task AppendChunksAsync(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<ChunkAppend> chunks, CancellationToken cancellationToken)
    {
        await using var update = Command(connection, transaction, """
            UPDATE generation_sessions
            SET output = output || $delta, output_tokens = output_tokens + $count, last_seq = $last_seq
            WHERE id = $id AND attempts = $attempt AND status = 'running' AND last_seq = $first_seq - 1
            """);
        var pDelta = update.Parameters.Add("$delta", SqliteType.Text);
        var pCount = update.Parameters.Add("$count", SqliteType.Integer);
        var pLast = update.Parameters.Add("$last_seq", SqliteType.Integer);
        var pId = update.Parameters.Add("$id", SqliteType.Text);
        var pAttempt = update.Parameters.Add("$attempt", SqliteType.Integer);
        var pFirst = update.Parameters.Add("$first_seq", SqliteType.Integer);

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
            while (end < chunks.Count && chunks[end].SessionId == first.SessionId && chunks[end].Attempt == first.Attempt && chunks[end].Seq == chunks[end - 1].Seq + 1)
            {
                end++;
            }

            delta.Clear();
            for (var i = start; i < end; i++)
            {
                delta.Append(chunks[i].Text);
            }

            pDelta.Value = delta.ToString();
            pCount.Value = end - start;
            pLast.Value = chunks[end - 1].Seq;
            pId.Value = first.SessionId;
            pAttempt.Value = first.Attempt;
            pFirst.Value = first.Seq;
            if (await update.ExecuteNonQueryAsync(cancellationToken) == 1)
            {
                iId.Value = first.SessionId;
                for (var i = start; i < end; i++)
                {
                    iSeq.Value = chunks[i].Seq;
                    iText.Value = chunks[i].Text;
                    await insert.ExecuteNonQueryAsync(cancellationToken);
                }
            }

            start = end;
        }
    }

    private static async Task<bool> IsLogCompactedAsync(SqliteConnection connection, SqliteTransaction transaction, string id, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, "SELECT log_compacted_at IS NOT NULL FROM generation_sessions WHERE id = $id");
        command.Parameters.AddWithValue("$id", id);
        return Convert.ToBoolean(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
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

    private async Task<GenerationSession?> FindByIdempotencyKeyAsync(string owner, string key, CancellationToken cancellationToken) =>
        (await _database.ReadAsync(connection => ReadByIdempotencyKeyAsync(connection, null, owner, key, cancellationToken), cancellationToken))?.Session;

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

        return new KeyedSession(ReadSession(reader), await reader.IsDBNullAsync(26, cancellationToken) ? null : reader.GetString(26));
    }

    private static async Task<GenerationSession?> ReadSessionAsync(
        SqliteConnection connection, SqliteTransaction? transaction, string id, string? ownerScope, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, $"SELECT {Columns} FROM generation_sessions WHERE id = $id AND ($owner IS NULL OR owner = $owner)");
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
    };

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }
}
