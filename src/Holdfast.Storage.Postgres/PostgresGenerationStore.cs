using Holdfast.Cluster;
using System.Globalization;
using System.Text;
using Holdfast.Audit;
using Holdfast.Generation;
using Holdfast.Sessions;
using Npgsql;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// Generation sessions and their runs in PostgreSQL (<see cref="IGenerationStore"/>, <see cref="IRunStore"/>). Every
/// change is one transaction that locks the session row (<c>FOR UPDATE</c>), asks the core's rules
/// (<see cref="GenerationStateMachine"/>, <see cref="GenerationRules"/>), and writes the row (compare-and-swap on
/// status and version), its status event and its audit event. Claims take rows with <c>FOR UPDATE SKIP LOCKED</c>, so
/// two nodes never claim one session; every run write is fenced by the row's <c>lease_epoch</c>. A group commit writes
/// the chunks of every session in one statement (arrays through <c>unnest</c>). A session's <c>output</c> holds the
/// text up to <c>output_seq</c>; a running session's later chunks are read from the log (<see cref="WholeOutput"/>,
/// migration 0015), so a commit does not rewrite the whole text.
/// </summary>
internal sealed class PostgresGenerationStore : IGenerationStore, IRunStore
{
    internal const string Columns = $"""
        id, owner, backend, model, input::text, parameters::text, metadata::text, status, desired_state, pause_reason, error, finish_reason,
        input_tokens, output_tokens, previous_session_id, forked_from, forked_at_seq, continuation, {WholeOutput}, last_seq,
        attempts, idempotency_key, created_at, updated_at, completed_at, version, log_compacted_at IS NOT NULL,
        lease_holder, lease_expires_at, lease_epoch, request_hash
        """;

    /// <summary>
    /// A session's whole output (inside a statement on <c>generation_sessions</c>, unaliased): the folded text in
    /// <c>output</c> and the chunks after <c>output_seq</c>, which only a running session has (migration 0015). The
    /// log is read only when there is a tail.
    /// </summary>
    internal const string WholeOutput = """
        CASE WHEN generation_sessions.output_seq >= generation_sessions.last_seq THEN generation_sessions.output
             ELSE generation_sessions.output || COALESCE((SELECT string_agg(t.payload, '' ORDER BY t.seq) FROM generation_log t
                 WHERE t.session_id = generation_sessions.id AND t.seq > generation_sessions.output_seq AND t.type = 'chunk'), '') END
        """;

    /// <summary>
    /// A group commit folds a running session's tail of chunk rows into <c>output</c> once this many events were
    /// stored after the folded text: a long output is then rewritten once per this many events instead of once per
    /// commit, and a read of a running session concatenates at most this many rows plus one commit's.
    /// </summary>
    internal const int FoldEvery = 256;

    private const string UniqueViolation = "23505";

    private readonly PostgresDatabase _database;
    private readonly TimeProvider _time;

    public PostgresGenerationStore(PostgresDatabase database, TimeProvider time)
    {
        _database = database;
        _time = time;
    }

    private enum LeaseChange
    {
        Keep,
        Claim,
        Release,
        Revoke,
    }

    public async Task<GenerationCreateResult> CreateAsync(NewGeneration session, Actor actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(actor);
        return await _database.WriteAsync(
            (connection, transaction, ct) => CreateInTransactionAsync(connection, transaction, session, actor, ct),
            cancellationToken);
    }

    public Task<GenerationChange> ForkAsync(string parentId, string? ownerScope, long? atSeq, string newId, Actor actor, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                var parent = (await ReadRowAsync(connection, transaction, parentId, ownerScope, "FOR SHARE", ct))?.Session
                    ?? throw new SessionNotFoundException(SessionKind.Generation, parentId);
                var at = GenerationRules.CheckFork(parent, atSeq);
                var prefix = new StringBuilder();
                long chunks = 0;
                await using (var read = new NpgsqlCommand(
                    "SELECT payload FROM generation_log WHERE session_id = @id AND type = 'chunk' AND seq <= @at ORDER BY seq", connection, transaction))
                {
                    read.Parameters.Add(Pg.Text("id", parentId));
                    read.Parameters.Add(Pg.Bigint("at", at));
                    await using var reader = await read.ExecuteReaderAsync(ct);
                    while (await reader.ReadAsync(ct))
                    {
                        prefix.Append(reader.GetString(0));
                        chunks++;
                    }
                }

                var fork = new NewGeneration(
                    newId, parent.Owner, parent.Backend, parent.Model, parent.Input, parent.Parameters, parent.Metadata,
                    parent.PreviousSessionId, IdempotencyKey: null, RequestHash: null, ForkedFrom: parent.Id, ForkedAtSeq: at,
                    InitialOutput: prefix.ToString(), InitialOutputTokens: GenerationRules.ForkOutputTokens(parent, at, chunks));
                return (await CreateInTransactionAsync(connection, transaction, fork, actor, ct)).Change;
            },
            cancellationToken);

    public Task<GenerationSession?> FindAsync(string id, string? ownerScope, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(async (connection, ct) => (await ReadRowAsync(connection, null, id, ownerScope, string.Empty, ct))?.Session, cancellationToken);

    public Task<GenerationPage> ListAsync(GenerationListQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        return _database.ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    $"""
                    SELECT {Columns} FROM generation_sessions
                    WHERE (@owner::text IS NULL OR owner = @owner)
                      AND (@status::text IS NULL OR status = @status)
                      AND (@cursor::text IS NULL OR id < @cursor)
                    ORDER BY id DESC
                    LIMIT @limit
                    """,
                    connection);
                command.Parameters.Add(Pg.Text("owner", query.Owner));
                command.Parameters.Add(Pg.Text("status", query.Status?.ToWire()));
                command.Parameters.Add(Pg.Text("cursor", query.Cursor));
                command.Parameters.Add(Pg.Integer("limit", query.Limit + 1));
                var items = new List<GenerationSession>();
                await using (var reader = await command.ExecuteReaderAsync(ct))
                {
                    while (await reader.ReadAsync(ct))
                    {
                        items.Add(Map(reader).Session);
                    }
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
    }

    public Task<GenerationChange> ApplyControlAsync(
        string id, string? ownerScope, GenerationCommand command, Actor actor, long? expectedVersion, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                var session = (await ReadRowAsync(connection, transaction, id, ownerScope, "FOR UPDATE", ct))?.Session
                    ?? throw new SessionNotFoundException(SessionKind.Generation, id);
                var transition = GenerationStateMachine.ApplyOrThrow(GenerationRules.StateOf(session), command);
                if (!transition.Changed)
                {
                    return new GenerationChange(session, null, false);
                }

                if (expectedVersion is { } expected && expected != session.Version)
                {
                    throw new SessionConflictException(
                        string.Create(CultureInfo.InvariantCulture, $"The session changed since version {expected} (it is now version {session.Version}, {GenerationRules.StateOf(session)}); reload it and retry."),
                        session.Status.ToWire(),
                        transition.To.Status.ToWire());
                }

                return await WriteTransitionAsync(connection, transaction, session, transition, actor, new TransitionFacts(), ct);
            },
            cancellationToken);

    public Task DeleteAsync(string id, string? ownerScope, Actor actor, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                var session = (await ReadRowAsync(connection, transaction, id, ownerScope, "FOR UPDATE", ct))?.Session
                    ?? throw new SessionNotFoundException(SessionKind.Generation, id);
                GenerationRules.CheckDelete(session);
                await using (var delete = new NpgsqlCommand("DELETE FROM generation_sessions WHERE id = @id AND version = @version", connection, transaction))
                {
                    delete.Parameters.Add(Pg.Text("id", id));
                    delete.Parameters.Add(Pg.Bigint("version", session.Version));
                    await delete.ExecuteNonQueryAsync(ct);
                }

                await PostgresAudit.AppendAsync(
                    connection, transaction, SessionKind.Generation, id, actor, AuditActions.Delete, session.Status.ToWire(), null, _time.GetUtcNow(), null, ct);
                return 0;
            },
            cancellationToken);

    public Task<IReadOnlyList<GenerationLogEvent>?> ReadLogAsync(string id, string? ownerScope, long afterSeq, int limit, CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<GenerationLogEvent>?>(
            async (connection, ct) =>
            {
                await using (var exists = new NpgsqlCommand("SELECT 1 FROM generation_sessions WHERE id = @id AND (@owner::text IS NULL OR owner = @owner)", connection))
                {
                    exists.Parameters.Add(Pg.Text("id", id));
                    exists.Parameters.Add(Pg.Text("owner", ownerScope));
                    if (await exists.ExecuteScalarAsync(ct) is null)
                    {
                        return null;
                    }
                }

                return await ReadLogRowsAsync(connection, id, afterSeq, limit, ct);
            },
            cancellationToken);

    public Task<IReadOnlyList<GenerationLogEvent>> ReadLogAfterAsync(string id, long afterSeq, int limit, CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<GenerationLogEvent>>(
            async (connection, ct) => await ReadLogRowsAsync(connection, id, afterSeq, limit, ct),
            cancellationToken);

    public Task<long> ReadDurableSeqAsync(string id, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand("SELECT COALESCE((SELECT last_seq FROM generation_sessions WHERE id = @id), 0)", connection);
                command.Parameters.Add(Pg.Text("id", id));
                return (long)(await command.ExecuteScalarAsync(ct))!;
            },
            cancellationToken);

    public Task<long?> ReadCompactedChunkSeqAsync(string id, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    """
                    SELECT (SELECT max(seq) FROM generation_log WHERE session_id = s.id AND type = 'chunk')
                    FROM generation_sessions s WHERE s.id = @id AND s.log_compacted_at IS NOT NULL
                    """,
                    connection);
                command.Parameters.Add(Pg.Text("id", id));
                return await command.ExecuteScalarAsync(ct) is long seq ? seq : (long?)null;
            },
            cancellationToken);

    public Task<int> CompactFinishedLogsAsync(DateTimeOffset finishedBefore, int limit, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                var due = new List<(string Id, string Status, string Output)>();
                await using (var select = new NpgsqlCommand(
                    $"""
                    SELECT id, status, {WholeOutput} FROM generation_sessions
                    WHERE completed_at IS NOT NULL AND log_compacted_at IS NULL AND completed_at < @before
                      AND status IN ('completed', 'cancelled')
                    ORDER BY completed_at
                    LIMIT @limit
                    FOR UPDATE SKIP LOCKED
                    """,
                    connection,
                    transaction))
                {
                    select.Parameters.Add(Pg.Time("before", finishedBefore));
                    select.Parameters.Add(Pg.Integer("limit", limit));
                    await using var reader = await select.ExecuteReaderAsync(ct);
                    while (await reader.ReadAsync(ct))
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
                    await using (var count = new NpgsqlCommand("SELECT count(*), max(seq) FROM generation_log WHERE session_id = @id AND type = 'chunk'", connection, transaction))
                    {
                        count.Parameters.Add(Pg.Text("id", id));
                        await using var reader = await count.ExecuteReaderAsync(ct);
                        await reader.ReadAsync(ct);
                        chunks = reader.GetInt64(0);
                        lastChunk = reader.NullableInt64(1);
                    }

                    if (chunks > 1 && lastChunk is { } last)
                    {
                        await using var merge = new NpgsqlCommand(
                            """
                            DELETE FROM generation_log WHERE session_id = @id AND type = 'chunk';
                            INSERT INTO generation_log (session_id, seq, type, payload) VALUES (@id, @seq, 'chunk', @output);
                            """,
                            connection,
                            transaction);
                        merge.Parameters.Add(Pg.Text("id", id));
                        merge.Parameters.Add(Pg.Bigint("seq", last));
                        merge.Parameters.Add(Pg.Text("output", output));
                        await merge.ExecuteNonQueryAsync(ct);
                    }

                    await using (var mark = new NpgsqlCommand("UPDATE generation_sessions SET log_compacted_at = @now WHERE id = @id", connection, transaction))
                    {
                        mark.Parameters.Add(Pg.Time("now", now));
                        mark.Parameters.Add(Pg.Text("id", id));
                        await mark.ExecuteNonQueryAsync(ct);
                    }

                    await PostgresAudit.AppendAsync(
                        connection, transaction, SessionKind.Generation, id, actor, AuditActions.CompactLog, status, status, now,
                        string.Create(CultureInfo.InvariantCulture, $"{chunks} chunk events merged into one"), ct);
                }

                return due.Count;
            },
            cancellationToken);

    public Task<IReadOnlyList<RunClaim>> ClaimRunnableAsync(RunClaimRequest request, Func<ClaimCandidate, ClaimChoice> choose, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(choose);
        return _database.WriteAsync<IReadOnlyList<RunClaim>>(
            async (connection, transaction, ct) =>
            {
                var rows = new List<GenerationSession>();
                ClaimLoad? load = null;
                // The cluster's load in the same statement (uncorrelated subqueries run once): live nodes other than
                // this one, the running sessions they hold, and those this node holds.
                await using (var select = new NpgsqlCommand(
                    $"""
                    SELECT {Columns},
                        (SELECT count(*)::int FROM cluster_nodes
                         WHERE node_id <> @node AND stopped_at IS NULL AND heartbeat_at > @live_after),
                        (SELECT count(*)::int FROM generation_sessions h JOIN cluster_nodes n ON n.node_id = h.lease_holder
                         WHERE h.status = 'running' AND h.lease_expires_at > @now
                           AND n.node_id <> @node AND n.stopped_at IS NULL AND n.heartbeat_at > @live_after),
                        (SELECT count(*)::int FROM generation_sessions WHERE status = 'running' AND lease_holder = @node)
                    FROM generation_sessions
                    WHERE status = 'queued' AND desired_state = 'running'
                    ORDER BY id
                    LIMIT @limit
                    FOR UPDATE OF generation_sessions SKIP LOCKED
                    """,
                    connection,
                    transaction))
                {
                    var now = _time.GetUtcNow();
                    select.Parameters.Add(Pg.Integer("limit", request.Limit));
                    select.Parameters.Add(Pg.Text("node", request.NodeId));
                    select.Parameters.Add(Pg.Time("now", now));
                    select.Parameters.Add(Pg.Time("live_after", now - request.LeaseDuration));
                    await using var reader = await select.ExecuteReaderAsync(ct);
                    while (await reader.ReadAsync(ct))
                    {
                        rows.Add(Map(reader).Session);
                        load ??= new ClaimLoad(reader.GetInt32(31), reader.GetInt32(32), reader.GetInt32(33));
                    }
                }

                var writes = new List<TransitionWrite>();
                foreach (var session in rows)
                {
                    var choice = choose(new ClaimCandidate(session.Id, session.Backend, session.Output.Length > 0, rows.Count, load, session.UpdatedAt));
                    if (!choice.Take)
                    {
                        continue;
                    }

                    if (GenerationStateMachine.Apply(GenerationRules.StateOf(session), GenerationCommand.Claim).Transition is not { } transition)
                    {
                        continue;
                    }

                    var facts = new TransitionFacts
                    {
                        NewAttempt = true,
                        Continuation = choice.Continuation,
                        Lease = LeaseChange.Claim,
                        NodeId = request.NodeId,
                        LeaseExpiresAt = _time.GetUtcNow() + request.LeaseDuration,
                    };
                    writes.Add(new TransitionWrite(session, transition, GenerationRules.RunnerActor, facts));
                }

                // Every claim of this transaction in one round trip.
                var claims = (await WriteTransitionsAsync(connection, transaction, writes, ct))
                    .Select(w => new RunClaim(w.Change, new RunLease(w.Row.Session.Id, request.NodeId, w.Row.LeaseEpoch, w.Row.LeaseExpiresAt!.Value)))
                    .ToList();
                return claims;
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<RunLease>> RenewLeasesAsync(string nodeId, TimeSpan leaseDuration, bool stopping = false, CancellationToken cancellationToken = default) =>
        _database.WriteAsync<IReadOnlyList<RunLease>>(
            async (connection, transaction, ct) =>
            {
                // One statement: the node's heartbeat (a data-modifying CTE runs whether or not it is referenced) and
                // every lease it holds.
                await using var command = new NpgsqlCommand(
                    """
                    WITH heartbeat AS (
                        INSERT INTO cluster_nodes (node_id, started_at, heartbeat_at, stopped_at)
                        VALUES (@node, @now, @now, CASE WHEN @stopping THEN @now END)
                        ON CONFLICT (node_id) DO UPDATE SET
                            heartbeat_at = EXCLUDED.heartbeat_at,
                            started_at = CASE WHEN cluster_nodes.stopped_at IS NULL OR @stopping THEN cluster_nodes.started_at ELSE EXCLUDED.started_at END,
                            stopped_at = CASE WHEN @stopping THEN COALESCE(cluster_nodes.stopped_at, EXCLUDED.heartbeat_at) END)
                    UPDATE generation_sessions SET lease_expires_at = @expires
                    WHERE lease_holder = @node AND status = 'running'
                    RETURNING id, lease_epoch, lease_expires_at
                    """,
                    connection,
                    transaction);
                var now = _time.GetUtcNow();
                command.Parameters.Add(Pg.Time("now", now));
                command.Parameters.Add(Pg.Time("expires", now + leaseDuration));
                command.Parameters.Add(Pg.Text("node", nodeId));
                command.Parameters.Add(Pg.Bool("stopping", stopping));
                var leases = new List<RunLease>();
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    leases.Add(new RunLease(reader.GetString(0), nodeId, reader.GetInt64(1), reader.Time(2)));
                }

                return leases;
            },
            cancellationToken);

    public async Task<IReadOnlyList<GenerationChange>> CommitAsync(IReadOnlyList<ChunkAppend> chunks, IReadOnlyList<RunFinish> finishes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        ArgumentNullException.ThrowIfNull(finishes);
        if (chunks.Count == 0 && finishes.Count == 0)
        {
            return [];
        }

        var runs = ChunkRuns.From(chunks);
        return await _database.WriteAsync<IReadOnlyList<GenerationChange>>(
            async (connection, transaction, ct) =>
            {
                await CheckFencesAsync(connection, transaction, chunks, finishes, ct);

                // The chunks, then the rows as they stand after them (already locked by the fence check), in one round
                // trip; then the run endings, one round trip for each wave of distinct sessions (a session that ended
                // twice in one commit has its second ending decided on the row its first one wrote).
                var rows = await AppendChunksAndReadAsync(connection, transaction, runs, finishes.Select(f => f.SessionId), ct);
                var changes = new List<GenerationChange>(finishes.Count);
                var wave = new List<TransitionWrite>();
                var waveIds = new HashSet<string>(StringComparer.Ordinal);
                foreach (var finish in finishes)
                {
                    if (!waveIds.Add(finish.SessionId))
                    {
                        await WriteWaveAsync();
                        waveIds.Add(finish.SessionId);
                    }

                    var session = rows[finish.SessionId].Session;
                    var (command, actor) = GenerationRules.DecideRunEnd(session, finish);
                    var transition = GenerationStateMachine.ApplyOrThrow(GenerationRules.StateOf(session), command);
                    var facts = new TransitionFacts
                    {
                        Error = finish.Error,
                        FinishReason = finish.FinishReason,
                        InputTokens = finish.InputTokens,
                        Lease = LeaseChange.Release,
                    };
                    wave.Add(new TransitionWrite(session, transition, actor, facts));
                }

                await WriteWaveAsync();
                return changes;

                async Task WriteWaveAsync()
                {
                    foreach (var (change, row) in await WriteTransitionsAsync(connection, transaction, wave, ct))
                    {
                        rows[row.Session.Id] = row;
                        changes.Add(change);
                    }

                    wave.Clear();
                    waveIds.Clear();
                }
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<GenerationChange>> RecoverAbandonedAsync(RecoveryRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return _database.WriteAsync<IReadOnlyList<GenerationChange>>(
            async (connection, transaction, ct) =>
            {
                var rows = new List<GenerationSession>();
                await using (var select = new NpgsqlCommand(
                    $"""
                    SELECT {Columns} FROM generation_sessions
                    WHERE status = 'running'
                      AND (((lease_expires_at IS NULL OR lease_expires_at < @now) AND lease_holder IS DISTINCT FROM @node)
                           OR (@own AND lease_holder = @node))
                    ORDER BY id
                    FOR UPDATE SKIP LOCKED
                    """,
                    connection,
                    transaction))
                {
                    select.Parameters.Add(Pg.Time("now", _time.GetUtcNow()));
                    select.Parameters.Add(Pg.Bool("own", request.TakeOwnLeasesBack));
                    select.Parameters.Add(Pg.Text("node", request.NodeId));
                    await using var reader = await select.ExecuteReaderAsync(ct);
                    while (await reader.ReadAsync(ct))
                    {
                        rows.Add(Map(reader).Session);
                    }
                }

                var (command, actor) = GenerationRules.Recovery(request.Policy);
                var writes = rows
                    .Select(session => new TransitionWrite(
                        session, GenerationStateMachine.ApplyOrThrow(GenerationRules.StateOf(session), command), actor, new TransitionFacts { Lease = LeaseChange.Revoke }))
                    .ToList();
                return (await WriteTransitionsAsync(connection, transaction, writes, ct)).Select(w => w.Change).ToList();
            },
            cancellationToken);
    }

    public Task MarkNodeStoppedAsync(string nodeId, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                await using var command = new NpgsqlCommand("UPDATE cluster_nodes SET stopped_at = @now WHERE node_id = @node", connection, transaction);
                command.Parameters.Add(Pg.Time("now", _time.GetUtcNow()));
                command.Parameters.Add(Pg.Text("node", nodeId));
                return await command.ExecuteNonQueryAsync(ct);
            },
            cancellationToken);

    public Task<IReadOnlyList<ClusterNode>> ListNodesAsync(CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<ClusterNode>>(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    """
                    SELECT n.node_id, n.started_at, n.heartbeat_at, n.stopped_at,
                           (SELECT count(*)::int FROM generation_sessions s WHERE s.lease_holder = n.node_id AND s.status = 'running')
                    FROM cluster_nodes n ORDER BY n.node_id
                    """,
                    connection);
                var nodes = new List<ClusterNode>();
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    nodes.Add(new ClusterNode(reader.GetString(0), reader.Time(1), reader.Time(2), reader.NullableTime(3), reader.GetInt32(4)));
                }

                return nodes;
            },
            cancellationToken);

    public Task<LeaseHolder?> FindHolderAsync(string sessionId, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    "SELECT lease_holder, lease_epoch, lease_expires_at FROM generation_sessions WHERE id = @id AND status = 'running' AND lease_holder IS NOT NULL",
                    connection);
                command.Parameters.Add(Pg.Text("id", sessionId));
                await using var reader = await command.ExecuteReaderAsync(ct);
                return await reader.ReadAsync(ct) ? new LeaseHolder(reader.GetString(0), reader.GetInt64(1), reader.Time(2)) : null;
            },
            cancellationToken);

    public Task<IReadOnlyList<string>> ListStopRequestedAsync(string nodeId, CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<string>>(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    "SELECT id FROM generation_sessions WHERE status = 'running' AND desired_state <> 'running' AND lease_holder = @node ORDER BY id", connection);
                command.Parameters.Add(Pg.Text("node", nodeId));
                var ids = new List<string>();
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    ids.Add(reader.GetString(0));
                }

                return ids;
            },
            cancellationToken);

    /// <summary>The row of a session as read (with its lease and request hash), or null.</summary>
    internal sealed record Row(GenerationSession Session, string? LeaseHolder, DateTimeOffset? LeaseExpiresAt, long LeaseEpoch, string? RequestHash);

    internal static Row Map(NpgsqlDataReader reader) => new(
        new GenerationSession
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
            PauseReason = reader.NullableString(9),
            Error = reader.NullableString(10),
            FinishReason = reader.NullableString(11),
            Usage = new GenerationUsage(reader.NullableInt64(12), reader.GetInt64(13)),
            PreviousSessionId = reader.NullableString(14),
            ForkedFrom = reader.NullableString(15),
            ForkedAtSeq = reader.NullableInt64(16),
            Continuation = reader.NullableString(17),
            Output = reader.GetString(18),
            LastSeq = reader.GetInt64(19),
            Attempts = reader.GetInt32(20),
            IdempotencyKey = reader.NullableString(21),
            CreatedAt = reader.Time(22),
            UpdatedAt = reader.Time(23),
            CompletedAt = reader.NullableTime(24),
            Version = reader.GetInt64(25),
            LogCompacted = reader.GetBoolean(26),
        },
        reader.NullableString(27),
        reader.NullableTime(28),
        reader.GetInt64(29),
        reader.NullableString(30));

    private static async Task<Row?> ReadRowAsync(
        NpgsqlConnection connection, NpgsqlTransaction? transaction, string id, string? ownerScope, string lockClause, CancellationToken cancellationToken)
    {
        // lockClause is one of this class's constants: "", "FOR SHARE", "FOR UPDATE".
        await using var command = new NpgsqlCommand(
            $"SELECT {Columns} FROM generation_sessions WHERE id = @id AND (@owner::text IS NULL OR owner = @owner) {lockClause}", connection, transaction);
        command.Parameters.Add(Pg.Text("id", id));
        command.Parameters.Add(Pg.Text("owner", ownerScope));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Map(reader) : null;
    }

    private static async Task<IReadOnlyList<GenerationLogEvent>> ReadLogRowsAsync(NpgsqlConnection connection, string id, long afterSeq, int limit, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT seq, type, payload FROM generation_log WHERE session_id = @id AND seq > @after ORDER BY seq LIMIT @limit", connection);
        command.Parameters.Add(Pg.Text("id", id));
        command.Parameters.Add(Pg.Bigint("after", afterSeq));
        command.Parameters.Add(Pg.Integer("limit", limit));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var events = new List<GenerationLogEvent>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var seq = reader.GetInt64(0);
            var payload = reader.GetString(2);
            events.Add(string.Equals(reader.GetString(1), "chunk", StringComparison.Ordinal)
                ? GenerationLogEvent.Chunk(id, seq, payload)
                : GenerationLogEvent.Status(id, seq, GenerationJson.Deserialize<GenerationStatusChange>(payload)));
        }

        return events;
    }

    private async Task<GenerationCreateResult> CreateInTransactionAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, NewGeneration row, Actor actor, CancellationToken cancellationToken)
    {
        if (row.IdempotencyKey is not null && await ReadByIdempotencyKeyAsync(connection, transaction, row.Owner, row.IdempotencyKey, cancellationToken) is { } existing)
        {
            GenerationRules.CheckIdempotentRetry(row.IdempotencyKey, existing.Session, existing.RequestHash, row.RequestHash);
            return new GenerationCreateResult(new GenerationChange(existing.Session, null, false), false);
        }

        if (row.PreviousSessionId is not null && row.ForkedFrom is null)
        {
            await using var previous = new NpgsqlCommand("SELECT 1 FROM generation_sessions WHERE id = @id AND owner = @owner", connection, transaction);
            previous.Parameters.Add(Pg.Text("id", row.PreviousSessionId));
            previous.Parameters.Add(Pg.Text("owner", row.Owner));
            if (await previous.ExecuteScalarAsync(cancellationToken) is null)
            {
                throw new InvalidSessionInputException("previous_session_id", $"'previous_session_id' names session '{row.PreviousSessionId}', which was not found.");
            }
        }

        var now = _time.GetUtcNow();
        var hasPrefix = row.InitialOutput.Length > 0;
        var queuedSeq = hasPrefix ? 2 : 1;
        var queued = new GenerationStatusChange(GenerationStatus.Queued);
        var action = row.ForkedFrom is null ? AuditActions.Create : AuditActions.Fork;
        var detail = AuditActions.CombineDetail(GenerationRules.CreateDetail(row, actor), actor.Reason);
        Row? created;
        // One statement, one round trip: the row, its first log events (the fork's prefix, then `queued`) and the audit
        // event (data-modifying CTEs over the inserted row, so nothing else is written when the idempotency key's
        // conflict leaves it out), returning the stored row.
        await using (var insert = new NpgsqlCommand(
            $"""
            WITH inserted AS (
                INSERT INTO generation_sessions (
                    id, owner, backend, model, input, parameters, metadata, status, desired_state, output, output_tokens, last_seq, output_seq,
                    previous_session_id, forked_from, forked_at_seq, idempotency_key, request_hash, created_at, updated_at, version)
                VALUES (@id, @owner, @backend, @model, @input, @parameters, @metadata, 'queued', 'running', @output, @output_tokens, @last_seq, @last_seq,
                    @previous, @forked_from, @forked_at_seq, @key, @hash, @now, @now, 1)
                ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                RETURNING {Columns}
            ), log AS (
                INSERT INTO generation_log (session_id, seq, type, payload)
                SELECT @id, 1, 'chunk', @prefix FROM inserted WHERE @has_prefix
                UNION ALL
                SELECT @id, @last_seq, 'status', @queued FROM inserted
            ), audit AS (
                INSERT INTO session_events (session_kind, session_id, seq, occurred_at, actor, action, from_state, to_state, detail)
                SELECT 'generation', @id,
                       COALESCE((SELECT max(seq) FROM session_events WHERE session_kind = 'generation' AND session_id = @id), 0) + 1,
                       @now, @actor, @action, NULL, 'queued', @detail
                FROM inserted
            )
            SELECT * FROM inserted
            """,
            connection,
            transaction))
        {
            insert.Parameters.Add(Pg.Text("id", row.Id));
            insert.Parameters.Add(Pg.Text("owner", row.Owner));
            insert.Parameters.Add(Pg.Text("backend", row.Backend));
            insert.Parameters.Add(Pg.Text("model", row.Model));
            insert.Parameters.Add(Pg.Jsonb("input", GenerationJson.Serialize(row.Input)));
            insert.Parameters.Add(Pg.Jsonb("parameters", GenerationJson.Serialize(row.Parameters)));
            insert.Parameters.Add(Pg.Jsonb("metadata", row.Metadata is null ? null : GenerationJson.Serialize(row.Metadata)));
            insert.Parameters.Add(Pg.Text("output", row.InitialOutput));
            insert.Parameters.Add(Pg.Bigint("output_tokens", row.InitialOutputTokens));
            insert.Parameters.Add(Pg.Bigint("last_seq", queuedSeq));
            insert.Parameters.Add(Pg.Text("previous", row.PreviousSessionId));
            insert.Parameters.Add(Pg.Text("forked_from", row.ForkedFrom));
            insert.Parameters.Add(Pg.Bigint("forked_at_seq", row.ForkedAtSeq));
            insert.Parameters.Add(Pg.Text("key", row.IdempotencyKey));
            insert.Parameters.Add(Pg.Text("hash", row.RequestHash));
            insert.Parameters.Add(Pg.Time("now", now));
            insert.Parameters.Add(Pg.Text("prefix", row.InitialOutput));
            insert.Parameters.Add(Pg.Bool("has_prefix", hasPrefix));
            insert.Parameters.Add(Pg.Text("queued", GenerationJson.Serialize(queued)));
            insert.Parameters.Add(Pg.Text("actor", actor.Name));
            insert.Parameters.Add(Pg.Text("action", action));
            insert.Parameters.Add(Pg.Text("detail", detail));
            try
            {
                await using var reader = await insert.ExecuteReaderAsync(cancellationToken);
                created = await reader.ReadAsync(cancellationToken) ? Map(reader) : null;
            }
            catch (PostgresException ex) when (ex.SqlState == UniqueViolation)
            {
                throw new SessionConflictException($"A generation session with id '{row.Id}' already exists.");
            }
        }

        if (created is null)
        {
            // Another transaction inserted the same (owner, key) first and has committed: return its session.
            var winner = await ReadByIdempotencyKeyAsync(connection, transaction, row.Owner, row.IdempotencyKey!, cancellationToken)
                ?? throw new SessionConflictException("A session with this Idempotency-Key is being created; retry the request.");
            GenerationRules.CheckIdempotentRetry(row.IdempotencyKey!, winner.Session, winner.RequestHash, row.RequestHash);
            return new GenerationCreateResult(new GenerationChange(winner.Session, null, false), false);
        }

        // Webhook events of the audit event, when its action has one (creating a session has none today: no round trip).
        await PostgresWebhookStore.EnqueueAsync(connection, transaction, SessionKind.Generation, row.Id, action, null, "queued", now, detail, cancellationToken);
        return new GenerationCreateResult(new GenerationChange(created.Session, GenerationLogEvent.Status(row.Id, queuedSeq, queued), true), true);
    }

    private static async Task<Row?> ReadByIdempotencyKeyAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, string owner, string key, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT {Columns} FROM generation_sessions WHERE owner = @owner AND idempotency_key = @key", connection, transaction);
        command.Parameters.Add(Pg.Text("owner", owner));
        command.Parameters.Add(Pg.Text("key", key));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Map(reader) : null;
    }

    private sealed record TransitionFacts
    {
        public bool NewAttempt { get; init; }

        public string? Continuation { get; init; }

        public string? Error { get; init; }

        public string? FinishReason { get; init; }

        public long? InputTokens { get; init; }

        public LeaseChange Lease { get; init; }

        public string? NodeId { get; init; }

        public DateTimeOffset? LeaseExpiresAt { get; init; }
    }

    private sealed record TransitionWrite(GenerationSession Session, GenerationTransition Transition, Actor Actor, TransitionFacts Facts);

    private async Task<GenerationChange> WriteTransitionAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, GenerationSession session, GenerationTransition transition, Actor actor, TransitionFacts facts, CancellationToken cancellationToken) =>
        (await WriteTransitionsAsync(connection, transaction, [new TransitionWrite(session, transition, actor, facts)], cancellationToken))[0].Change;

    /// <summary>
    /// Writes transitions of distinct sessions in one round trip (an <see cref="NpgsqlBatch"/> of one statement each):
    /// every statement is the compare-and-swap on (status, version), then, only when it matched, the status event and
    /// the audit event (data-modifying CTEs; the audit seq is the session's previous max + 1, the row lock taken by the
    /// UPDATE keeps it from racing), returning the row and its owner's webhook subscriptions. Throws
    /// <see cref="SessionConflictException"/> when a row changed meanwhile (the caller's transaction then rolls back).
    /// </summary>
    private async Task<IReadOnlyList<(GenerationChange Change, Row Row)>> WriteTransitionsAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<TransitionWrite> writes, CancellationToken cancellationToken)
    {
        if (writes.Count == 0)
        {
            return [];
        }

        var now = _time.GetUtcNow();
        var statusEvents = new GenerationLogEvent?[writes.Count];
        var written = new List<(GenerationChange Change, Row Row)>(writes.Count);
        var subscriptions = new List<(string Id, string EventTypes)>[writes.Count];
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            for (var i = 0; i < writes.Count; i++)
            {
                batch.BatchCommands.Add(TransitionCommand(writes[i], now, out statusEvents[i]));
            }

            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            for (var i = 0; i < writes.Count; i++)
            {
                if (i > 0)
                {
                    await reader.NextResultAsync(cancellationToken);
                }

                var (session, transition, _, _) = writes[i];
                if (!await reader.ReadAsync(cancellationToken))
                {
                    throw new SessionConflictException(
                        $"Session '{session.Id}' was changed concurrently; reload it and retry.", session.Status.ToWire(), transition.To.Status.ToWire());
                }

                var updated = Map(reader);
                var ids = await reader.GetFieldValueAsync<string[]>(31, cancellationToken);
                var types = await reader.GetFieldValueAsync<string[]>(32, cancellationToken);
                subscriptions[i] = ids.Zip(types).ToList();
                written.Add((new GenerationChange(updated.Session, statusEvents[i], true), updated));
            }
        }

        // The webhook events of these changes (issue 12), in the same transaction as their audit events. The statements
        // above returned each row's owner's subscriptions, so this writes only when one matches (no extra round trip).
        for (var i = 0; i < writes.Count; i++)
        {
            var (_, transition, actor, facts) = writes[i];
            await PostgresWebhookStore.EnqueueGenerationAsync(
                connection, transaction, written[i].Row.Session, subscriptions[i], AuditActions.For(transition.Command.Kind), transition.From.ToString(), transition.To.ToString(), now,
                AuditActions.CombineDetail(GenerationRules.TransitionDetail(transition, actor, facts.Error), actor.Reason), cancellationToken);
        }

        return written;
    }

    private static NpgsqlBatchCommand TransitionCommand(TransitionWrite write, DateTimeOffset now, out GenerationLogEvent? statusEvent)
    {
        var (session, transition, actor, facts) = write;
        var to = transition.To;
        var statusChange = GenerationRules.StatusEventFor(transition, facts.Error, facts.FinishReason);
        statusEvent = statusChange is null ? null : GenerationLogEvent.Status(session.Id, session.LastSeq + 1, statusChange);
        var update = new NpgsqlBatchCommand(
            $"""
            WITH updated AS (
                UPDATE generation_sessions SET
                    output = CASE WHEN output_seq >= last_seq THEN output ELSE output
                        || COALESCE((SELECT string_agg(t.payload, '' ORDER BY t.seq) FROM generation_log t
                                     WHERE t.session_id = @id AND t.seq > output_seq AND t.type = 'chunk'), '') END,
                    output_seq = last_seq + CASE WHEN @status_changed THEN 1 ELSE 0 END,
                    status = @status,
                    desired_state = @desired,
                    pause_reason = @pause_reason,
                    error = CASE WHEN @set_error THEN @error ELSE error END,
                    finish_reason = COALESCE(@finish_reason, finish_reason),
                    input_tokens = COALESCE(@input_tokens, input_tokens),
                    continuation = CASE WHEN @new_attempt THEN @continuation ELSE continuation END,
                    attempts = attempts + CASE WHEN @new_attempt THEN 1 ELSE 0 END,
                    last_seq = last_seq + CASE WHEN @status_changed THEN 1 ELSE 0 END,
                    updated_at = @now,
                    completed_at = CASE WHEN @final THEN @now ELSE completed_at END,
                    version = version + 1,
                    lease_holder = CASE @lease WHEN 0 THEN lease_holder WHEN 1 THEN @node ELSE NULL END,
                    lease_expires_at = CASE @lease WHEN 0 THEN lease_expires_at WHEN 1 THEN @lease_expires ELSE NULL END,
                    lease_epoch = lease_epoch + CASE WHEN @lease IN (1, 3) THEN 1 ELSE 0 END
                WHERE id = @id AND status = @old_status AND version = @old_version
                RETURNING {Columns}
            ), status_event AS (
                INSERT INTO generation_log (session_id, seq, type, payload)
                SELECT @id, @seq, 'status', @payload FROM updated WHERE @status_changed
            ), audit AS (
                INSERT INTO session_events (session_kind, session_id, seq, occurred_at, actor, action, from_state, to_state, detail)
                SELECT 'generation', @id,
                       COALESCE((SELECT max(seq) FROM session_events WHERE session_kind = 'generation' AND session_id = @id), 0) + 1,
                       @now, @actor, @action, @from_state, @to_state, @detail
                FROM updated
            )
            SELECT updated.*,
                   ARRAY(SELECT w.id FROM webhook_subscriptions w WHERE w.owner = updated.owner ORDER BY w.id),
                   ARRAY(SELECT w.event_types FROM webhook_subscriptions w WHERE w.owner = updated.owner ORDER BY w.id)
            FROM updated
            """);
        update.Parameters.Add(Pg.Text("status", to.Status.ToWire()));
        update.Parameters.Add(Pg.Text("desired", to.Desired.ToWire()));
        update.Parameters.Add(Pg.Text("pause_reason", to.Status == GenerationStatus.Paused || to.Desired == GenerationDesiredState.Paused ? to.PauseReason : null));
        update.Parameters.Add(Pg.Bool("set_error", to.Status == GenerationStatus.Failed));
        update.Parameters.Add(Pg.Text("error", facts.Error));
        update.Parameters.Add(Pg.Text("finish_reason", to.Status == GenerationStatus.Completed ? facts.FinishReason : null));
        update.Parameters.Add(Pg.Bigint("input_tokens", facts.InputTokens));
        update.Parameters.Add(Pg.Bool("new_attempt", facts.NewAttempt));
        update.Parameters.Add(Pg.Text("continuation", facts.Continuation));
        update.Parameters.Add(Pg.Bool("status_changed", statusEvent is not null));
        update.Parameters.Add(Pg.Time("now", now));
        update.Parameters.Add(Pg.Bool("final", to.Status is GenerationStatus.Completed or GenerationStatus.Cancelled));
        update.Parameters.Add(Pg.Integer("lease", (int)facts.Lease));
        update.Parameters.Add(Pg.Text("node", facts.NodeId));
        update.Parameters.Add(Pg.Time("lease_expires", facts.LeaseExpiresAt));
        update.Parameters.Add(Pg.Text("id", session.Id));
        update.Parameters.Add(Pg.Text("old_status", session.Status.ToWire()));
        update.Parameters.Add(Pg.Bigint("old_version", session.Version));
        update.Parameters.Add(Pg.Bigint("seq", statusEvent?.Seq ?? 0));
        update.Parameters.Add(Pg.Text("payload", statusEvent is null ? string.Empty : GenerationJson.Serialize(statusEvent.StatusChange)));
        update.Parameters.Add(Pg.Text("actor", actor.Name));
        update.Parameters.Add(Pg.Text("action", AuditActions.For(transition.Command.Kind)));
        update.Parameters.Add(Pg.Text("from_state", transition.From.ToString()));
        update.Parameters.Add(Pg.Text("to_state", to.ToString()));
        update.Parameters.Add(Pg.Text("detail", AuditActions.CombineDetail(GenerationRules.TransitionDetail(transition, actor, facts.Error), actor.Reason)));
        return update;
    }

    /// <summary>
    /// The fence of a group commit: locks every session it writes (in id order, so two nodes' commits never deadlock)
    /// and throws <see cref="LeaseLostException"/> naming those whose lease epoch is not the writer's token or that are
    /// no longer running, before anything is written.
    /// </summary>
    private static async Task CheckFencesAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<ChunkAppend> chunks, IReadOnlyList<RunFinish> finishes, CancellationToken cancellationToken)
    {
        var tokens = new Dictionary<string, HashSet<long>>(StringComparer.Ordinal);
        foreach (var (id, token) in chunks.Select(c => (c.SessionId, c.FencingToken)).Concat(finishes.Select(f => (f.SessionId, f.FencingToken))))
        {
            if (!tokens.TryGetValue(id, out var set))
            {
                tokens[id] = set = [];
            }

            set.Add(token);
        }

        var ids = tokens.Keys.Order(StringComparer.Ordinal).ToArray();
        var found = new Dictionary<string, (long Epoch, bool Running)>(StringComparer.Ordinal);
        await using (var select = new NpgsqlCommand(
            "SELECT id, lease_epoch, status = 'running' FROM generation_sessions WHERE id = ANY(@ids) ORDER BY id FOR UPDATE", connection, transaction))
        {
            select.Parameters.Add(Pg.TextArray("ids", ids));
            await using var reader = await select.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                found[reader.GetString(0)] = (reader.GetInt64(1), reader.GetBoolean(2));
            }
        }

        var lost = ids.Where(id => !found.TryGetValue(id, out var row) || !row.Running || tokens[id].Any(t => t != row.Epoch)).ToList();
        if (lost.Count > 0)
        {
            throw new LeaseLostException(lost);
        }
    }

    /// <summary>
    /// Appends the chunk runs and then reads the rows of <paramref name="readIds"/>, in one round trip (an
    /// <see cref="NpgsqlBatch"/>). The append is one statement: each session's row moves its last seq past its run (when
    /// the run follows the stored last seq, fenced by the token), and the log rows of exactly those runs are inserted.
    /// The row's <c>output</c> is left as it is (PostgreSQL keeps an unchanged TOAST value without copying it) unless
    /// <see cref="FoldEvery"/> events wait after <c>output_seq</c>: then the stored chunks up to the old last seq are
    /// folded into it.
    /// </summary>
    private static async Task<Dictionary<string, Row>> AppendChunksAndReadAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<ChunkRuns.Run> runs, IEnumerable<string> readIds, CancellationToken cancellationToken)
    {
        var ids = readIds.Distinct(StringComparer.Ordinal).ToArray();
        var rows = new Dictionary<string, Row>(StringComparer.Ordinal);
        await using var batch = new NpgsqlBatch(connection, transaction);
        if (runs.Count > 0)
        {
            batch.BatchCommands.Add(AppendChunksCommand(runs));
        }

        if (ids.Length > 0)
        {
            var read = new NpgsqlBatchCommand($"SELECT {Columns} FROM generation_sessions WHERE id = ANY(@ids)");
            read.Parameters.Add(Pg.TextArray("ids", ids));
            batch.BatchCommands.Add(read);
        }

        if (ids.Length == 0)
        {
            if (runs.Count > 0)
            {
                await batch.ExecuteNonQueryAsync(cancellationToken);
            }

            return rows;
        }

        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        // The append returns no rows; the reader starts on its (empty) result or already on the SELECT's.
        var onSelect = reader.FieldCount > 0;
        while (!onSelect && await reader.NextResultAsync(cancellationToken))
        {
            onSelect = reader.FieldCount > 0;
        }

        while (await reader.ReadAsync(cancellationToken))
        {
            var row = Map(reader);
            rows[row.Session.Id] = row;
        }

        return rows;
    }

    private static NpgsqlBatchCommand AppendChunksCommand(IReadOnlyList<ChunkRuns.Run> runs)
    {
        var chunkCount = runs.Sum(r => r.Texts.Count);
        var chunkIds = new string[chunkCount];
        var chunkSeqs = new long[chunkCount];
        var chunkTexts = new string[chunkCount];
        var i = 0;
        foreach (var run in runs)
        {
            for (var k = 0; k < run.Texts.Count; k++, i++)
            {
                chunkIds[i] = run.SessionId;
                chunkSeqs[i] = run.FirstSeq + k;
                chunkTexts[i] = run.Texts[k];
            }
        }

        var command = new NpgsqlBatchCommand(
            """
            WITH runs AS (
                SELECT * FROM unnest(@run_ids, @run_tokens, @run_first, @run_last, @run_counts)
                    AS r(id, token, first_seq, last_seq, cnt)
            ), appended AS (
                UPDATE generation_sessions s
                SET output = CASE WHEN s.last_seq - s.output_seq < @fold_every THEN s.output ELSE s.output
                        || COALESCE((SELECT string_agg(t.payload, '' ORDER BY t.seq) FROM generation_log t
                                     WHERE t.session_id = s.id AND t.seq > s.output_seq AND t.seq <= s.last_seq AND t.type = 'chunk'), '') END,
                    output_seq = CASE WHEN s.last_seq - s.output_seq < @fold_every THEN s.output_seq ELSE s.last_seq END,
                    output_tokens = s.output_tokens + r.cnt, last_seq = r.last_seq
                FROM runs r
                WHERE s.id = r.id AND s.lease_epoch = r.token AND s.status = 'running' AND s.last_seq = r.first_seq - 1
                RETURNING s.id, r.first_seq, r.last_seq
            )
            INSERT INTO generation_log (session_id, seq, type, payload)
            SELECT c.id, c.seq, 'chunk', c.payload
            FROM unnest(@chunk_ids, @chunk_seqs, @chunk_texts) AS c(id, seq, payload)
            JOIN appended a ON a.id = c.id AND c.seq BETWEEN a.first_seq AND a.last_seq
            """);
        command.Parameters.Add(Pg.TextArray("run_ids", runs.Select(r => r.SessionId).ToArray()));
        command.Parameters.Add(Pg.BigintArray("run_tokens", runs.Select(r => r.FencingToken).ToArray()));
        command.Parameters.Add(Pg.BigintArray("run_first", runs.Select(r => r.FirstSeq).ToArray()));
        command.Parameters.Add(Pg.BigintArray("run_last", runs.Select(r => r.FirstSeq + r.Texts.Count - 1).ToArray()));
        command.Parameters.Add(Pg.BigintArray("run_counts", runs.Select(r => (long)r.Texts.Count).ToArray()));
        command.Parameters.Add(Pg.Integer("fold_every", FoldEvery));
        command.Parameters.Add(Pg.TextArray("chunk_ids", chunkIds));
        command.Parameters.Add(Pg.BigintArray("chunk_seqs", chunkSeqs));
        command.Parameters.Add(Pg.TextArray("chunk_texts", chunkTexts));
        return command;
    }
}

/// <summary>
/// The chunks of one group commit as one run per session: its consecutive chunks from the lowest seq on. Chunks after
/// a hole in a session's seqs can never follow the stored last seq once the run before them is written, so they are
/// left out (the run ending then turns into an interrupt, see <see cref="GenerationRules.DecideRunEnd"/>).
/// </summary>
internal static class ChunkRuns
{
    public sealed record Run(string SessionId, long FencingToken, long FirstSeq, IReadOnlyList<string> Texts);

    public static IReadOnlyList<Run> From(IReadOnlyList<ChunkAppend> chunks)
    {
        var runs = new List<Run>();
        foreach (var group in chunks.GroupBy(c => c.SessionId, StringComparer.Ordinal))
        {
            var ordered = group.OrderBy(c => c.Seq).ToList();
            var texts = new List<string> { ordered[0].Text };
            for (var i = 1; i < ordered.Count && ordered[i].Seq == ordered[i - 1].Seq + 1; i++)
            {
                texts.Add(ordered[i].Text);
            }

            runs.Add(new Run(group.Key, ordered[0].FencingToken, ordered[0].Seq, texts));
        }

        return runs;
    }
}
