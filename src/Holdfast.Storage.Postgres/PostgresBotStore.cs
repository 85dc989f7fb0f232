using System.Globalization;
using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;
using Npgsql;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// <see cref="IBotStore"/> over the design record's <c>bot_sessions</c> table in PostgreSQL. Each change is one
/// transaction: lock the row (<c>FOR UPDATE</c>), check the request, update it with <c>version = version + 1</c>
/// guarded by the version read, append the audit event, commit. Concurrent changes of one session wait for each
/// other, so none is lost.
/// </summary>
internal sealed class PostgresBotStore : IBotStore
{
    private const string Columns =
        "session_id, created_at, last_message, status, qr_data, updated_at, bot_type, owner, connection_detail, version, last_message_at, " +
        "connection_state, connection_reason, connection_code, connection_changed_at, qr_seq, qr_set_at, qr_attempts, " +
        "lease_holder, lease_expires_at, lease_epoch";

    private const string ReactivateSql = $"""
        UPDATE bot_sessions
        SET status = 'active', bot_type = @bot_type, connection_detail = NULL,
            connection_state = 'starting', connection_reason = NULL, connection_code = NULL, connection_changed_at = @now,
            updated_at = @now, version = version + 1,
            lease_holder = COALESCE(@node, lease_holder),
            lease_expires_at = CASE WHEN @node::text IS NULL THEN lease_expires_at ELSE @expires END,
            lease_epoch = CASE WHEN @node::text IS NULL THEN lease_epoch ELSE lease_epoch + 1 END
        WHERE session_id = @id AND version = @version
        RETURNING {Columns}
        """;

    private const string AssignOwnerSql = $"""
        UPDATE bot_sessions SET owner = @owner, updated_at = @now, version = version + 1
        WHERE session_id = @id AND version = @version
        RETURNING {Columns}
        """;

    private const string SetQrSql = $"""
        UPDATE bot_sessions
        SET qr_data = @qr, updated_at = @now, version = version + 1,
            qr_seq = CASE WHEN @qr::text IS NULL THEN qr_seq ELSE qr_seq + 1 END,
            qr_set_at = CASE WHEN @qr::text IS NULL THEN qr_set_at ELSE @now END,
            qr_attempts = CASE WHEN @qr::text IS NULL THEN qr_attempts ELSE qr_attempts + 1 END
        WHERE session_id = @id AND version = @version
        RETURNING {Columns}
        """;

    private const string RecordMessageSql = $"""
        UPDATE bot_sessions SET last_message = @text, last_message_at = COALESCE(@at, @now), updated_at = @now, version = version + 1
        WHERE session_id = @id AND version = @version
        RETURNING {Columns}
        """;

    private const string SetConnectionSql = $"""
        UPDATE bot_sessions SET connection_detail = @detail, updated_at = @now, version = version + 1
        WHERE session_id = @id AND version = @version
        RETURNING {Columns}
        """;

    private const string SetConnectionStateSql = $"""
        UPDATE bot_sessions
        SET connection_state = @state, connection_reason = @reason, connection_code = @code, connection_changed_at = @now,
            connection_detail = @detail, qr_data = CASE WHEN @state = 'connected' THEN NULL ELSE qr_data END,
            qr_attempts = CASE WHEN @state = 'connected' THEN 0 ELSE qr_attempts END,
            updated_at = @now, version = version + 1,
            lease_holder = CASE WHEN @state IN ('failed', 'logged_out') THEN NULL ELSE lease_holder END,
            lease_expires_at = CASE WHEN @state IN ('failed', 'logged_out') THEN NULL ELSE lease_expires_at END
        WHERE session_id = @id AND version = @version
        RETURNING {Columns}
        """;

    private const string EndSql = $"""
        UPDATE bot_sessions SET status = 'inactive', qr_data = NULL, connection_detail = NULL,
            connection_state = CASE WHEN connection_state IN ('logged_out', 'failed') THEN connection_state ELSE 'disconnected' END,
            connection_reason = CASE WHEN connection_state IN ('logged_out', 'failed') THEN connection_reason ELSE 'ended' END,
            connection_changed_at = @now, updated_at = @now, version = version + 1,
            lease_holder = NULL, lease_expires_at = NULL
        WHERE session_id = @id AND version = @version
        RETURNING {Columns}
        """;

    private const string SaveAuthStateSql = $"""
        UPDATE bot_sessions SET auth_state = @state, updated_at = @now, version = version + 1
        WHERE session_id = @id AND version = @version
        RETURNING {Columns}
        """;

    private readonly PostgresDatabase _database;
    private readonly TimeProvider _time;

    public PostgresBotStore(PostgresDatabase database, TimeProvider time)
    {
        _database = database;
        _time = time;
    }

    public Task<BotStartResult> StartOrReactivateAsync(StartBotSession request, Actor actor, CancellationToken cancellationToken = default) =>
        StartOrReactivateAsync(request, actor, null, cancellationToken);

    public async Task<BotStartResult> StartOrReactivateAsync(StartBotSession request, Actor actor, BotLeaseRequest? lease, CancellationToken cancellationToken = default)
    {
        BotLimits.ValidateStart(request);
        ArgumentNullException.ThrowIfNull(actor);
        return await _database.WriteAsync(
                async (connection, transaction, ct) =>
                {
                    var now = _time.GetUtcNow();
                    var existing = await ReadRowAsync(connection, transaction, request.SessionId, ct);
                    var plan = BotRules.DecideStart(existing, request);
                    if (plan.Outcome == BotStartOutcome.AlreadyActive)
                    {
                        return new BotStartResult(existing!, BotStartOutcome.AlreadyActive);
                    }

                    if (existing is null)
                    {
                        // ON CONFLICT: a concurrent start of the same new id waits for the other insert; when that
                        // one won, the row is read (now visible) and this start goes on as for an existing session.
                        await using var insert = new NpgsqlCommand(
                            $"""
                            INSERT INTO bot_sessions (session_id, created_at, last_message, status, qr_data, updated_at, bot_type, owner, connection_detail, version,
                                                      connection_state, connection_changed_at,
                                                      lease_holder, lease_expires_at, lease_epoch)
                            VALUES (@id, @now, NULL, 'active', NULL, @now, @bot_type, @owner, NULL, 1, 'starting', @now,
                                    @node, CASE WHEN @node::text IS NULL THEN NULL ELSE @expires END, CASE WHEN @node::text IS NULL THEN 0 ELSE 1 END)
                            ON CONFLICT (session_id) DO NOTHING
                            RETURNING {Columns}
                            """,
                            connection,
                            transaction);
                        insert.Parameters.Add(Pg.Text("id", request.SessionId));
                        insert.Parameters.Add(Pg.Time("now", now));
                        insert.Parameters.Add(Pg.Text("bot_type", request.BotType));
                        insert.Parameters.Add(Pg.Text("owner", request.Owner));
                        BindLease(insert, lease, now);
                        if (await ReadSingleAsync(insert, ct) is { } created)
                        {
                            await PostgresAudit.AppendAsync(
                                connection, transaction, SessionKind.Bot, request.SessionId, actor, AuditActions.BotCreated, null, "active", now,
                                plan.Detail, ct);
                            return new BotStartResult(created, BotStartOutcome.Created, LeaseOf(created, lease));
                        }

                        // The other start won: decide again on its row, as for a session that existed.
                        existing = (await ReadRowAsync(connection, transaction, request.SessionId, ct))!;
                        plan = BotRules.DecideStart(existing, request);
                        if (plan.Outcome == BotStartOutcome.AlreadyActive)
                        {
                            return new BotStartResult(existing, BotStartOutcome.AlreadyActive);
                        }
                    }

                    var reactivated = await UpdateAsync(
                        connection,
                        transaction,
                        existing,
                        ReactivateSql,
                        command =>
                        {
                            command.Parameters.Add(Pg.Text("bot_type", request.BotType));
                            BindLease(command, lease, now);
                        },
                        now,
                        ct);
                    await PostgresAudit.AppendAsync(
                        connection, transaction, SessionKind.Bot, request.SessionId, actor, AuditActions.BotReactivated, "inactive", "active", now, plan.Detail, ct);
                    return new BotStartResult(reactivated, BotStartOutcome.Reactivated, LeaseOf(reactivated, lease));
                },
                cancellationToken);
    }

    public Task<BotSession> SetQrAsync(string sessionId, string? qrData, Actor actor, CancellationToken cancellationToken = default) =>
        SetQrAsync(sessionId, qrData, actor, null, cancellationToken);

    public Task<BotSession> SetQrAsync(string sessionId, string? qrData, Actor actor, BotLease? fence, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        BotLimits.ValidateQr(qrData);
        return ChangeAsync(
            sessionId,
            actor,
            BotRules.SetQr(qrData),
            fence,
            update: SetQrSql,
            bind: command => command.Parameters.Add(Pg.Text("qr", qrData)),
            cancellationToken);
    }

    public Task<BotSession> RecordMessageAsync(string sessionId, string text, Actor actor, CancellationToken cancellationToken = default) =>
        RecordMessageAsync(sessionId, text, null, actor, cancellationToken);

    public Task<BotSession> RecordMessageAsync(string sessionId, string text, DateTimeOffset? receivedAt, Actor actor, CancellationToken cancellationToken = default) =>
        RecordMessageAsync(sessionId, text, receivedAt, actor, null, cancellationToken);

    public Task<BotSession> RecordMessageAsync(string sessionId, string text, DateTimeOffset? receivedAt, Actor actor, BotLease? fence, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        BotLimits.ValidateMessage(text);

        // Decided inside the write transaction (row locked), so concurrent messages cannot overtake each other: only
        // forward. A message without a runtime time is stamped when it commits, so it is never older than the stored one.
        return ChangeAsync(
            sessionId,
            actor,
            BotRules.RecordMessage(text, receivedAt),
            fence,
            update: RecordMessageSql,
            bind: command =>
            {
                command.Parameters.Add(Pg.Text("text", text));
                command.Parameters.Add(Pg.Time("at", receivedAt));
            },
            cancellationToken);
    }

    public Task<BotSession> SetConnectionStateAsync(string sessionId, BotConnectionState state, string? reason, int? code, Actor actor, CancellationToken cancellationToken = default) =>
        SetConnectionStateAsync(sessionId, state, reason, code, actor, null, cancellationToken);

    public Task<BotSession> SetConnectionStateAsync(string sessionId, BotConnectionState state, string? reason, int? code, Actor actor, BotLease? fence, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        var wire = state.ToWire();
        var detail = BotLimits.ValidateConnectionDetail(BotLimits.ConnectionDetail(wire, reason, code));
        return ChangeAsync(
            sessionId,
            actor,
            BotRules.SetConnectionState(state, reason, code, detail),
            fence,
            update: SetConnectionStateSql,
            bind: command =>
            {
                command.Parameters.Add(Pg.Text("state", wire));
                command.Parameters.Add(Pg.Text("reason", reason));
                command.Parameters.Add(Pg.Integer("code", code));
                command.Parameters.Add(Pg.Text("detail", detail));
            },
            cancellationToken);
    }

    public Task<BotSession> SetConnectionAsync(string sessionId, string? connectionDetail, Actor actor, CancellationToken cancellationToken = default) =>
        SetConnectionAsync(sessionId, connectionDetail, actor, null, cancellationToken);

    public Task<BotSession> SetConnectionAsync(string sessionId, string? connectionDetail, Actor actor, BotLease? fence, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        BotLimits.ValidateConnectionDetail(connectionDetail);
        return ChangeAsync(
            sessionId,
            actor,
            BotRules.SetConnection(connectionDetail),
            fence,
            update: SetConnectionSql,
            bind: command => command.Parameters.Add(Pg.Text("detail", connectionDetail)),
            cancellationToken);
    }

    public Task<BotSession> AssignOwnerAsync(string sessionId, string owner, Actor actor, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        SessionIds.Validate(owner, "owner");
        return ChangeAsync(
            sessionId,
            actor,
            BotRules.AssignOwner(owner),
            fence: null,
            update: AssignOwnerSql,
            bind: command => command.Parameters.Add(Pg.Text("owner", owner)),
            cancellationToken);
    }

    public Task<BotSession> EndAsync(string sessionId, Actor actor, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        return ChangeAsync(
            sessionId,
            actor,
            BotRules.End(),
            fence: null,
            update: EndSql,
            bind: _ => { },
            cancellationToken);
    }

    public async Task<BotSession?> FindAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        return await _database.ReadAsync((connection, ct) => ReadRowAsync(connection, null, sessionId, ct), cancellationToken);
    }

    public async Task<BotPage> ListAsync(BotListQuery query, CancellationToken cancellationToken = default)
    {
        query = BotLimits.ValidateList(query);
        return await _database.ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    $"""
                    SELECT {Columns} FROM bot_sessions
                    WHERE (@status::text IS NULL OR status = @status)
                      AND (@owner::text IS NULL OR owner = @owner)
                      AND (@after::text IS NULL OR session_id > @after)
                    ORDER BY session_id
                    LIMIT @limit
                    """,
                    connection);
                command.Parameters.Add(Pg.Text("status", query.Status?.ToWire()));
                command.Parameters.Add(Pg.Text("owner", query.Owner));
                command.Parameters.Add(Pg.Text("after", query.After));
                command.Parameters.Add(Pg.Integer("limit", query.Limit + 1));
                var items = new List<BotSession>();
                await using (var reader = await command.ExecuteReaderAsync(ct))
                {
                    while (await reader.ReadAsync(ct))
                    {
                        items.Add(Map(reader));
                    }
                }

                if (items.Count > query.Limit)
                {
                    items.RemoveAt(items.Count - 1);
                    return new BotPage(items, items[^1].SessionId);
                }

                return new BotPage(items, null);
            },
            cancellationToken);
    }

    public Task<BotSession> SaveAuthStateAsync(string sessionId, ReadOnlyMemory<byte>? protectedState, Actor actor, CancellationToken cancellationToken = default) =>
        SaveAuthStateAsync(sessionId, protectedState, actor, null, cancellationToken);

    public Task<BotSession> SaveAuthStateAsync(string sessionId, ReadOnlyMemory<byte>? protectedState, Actor actor, BotLease? fence, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        if (protectedState is { } blob)
        {
            BotLimits.ValidateAuthState(blob.Length, BotLimits.AuthStateEnvelopeBytes);
        }

        var bytes = protectedState?.ToArray();
        return ChangeAsync(
            sessionId,
            actor,
            BotRules.SaveAuthState(bytes?.Length),
            fence,
            update: SaveAuthStateSql,
            bind: command => command.Parameters.Add(Pg.Bytea("state", bytes)),
            cancellationToken);
    }

    public async Task<byte[]?> LoadAuthStateAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        return await _database.ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand("SELECT auth_state FROM bot_sessions WHERE session_id = @id", connection);
                command.Parameters.Add(Pg.Text("id", sessionId));
                await using var reader = await command.ExecuteReaderAsync(ct);
                if (!await reader.ReadAsync(ct))
                {
                    throw new SessionNotFoundException(SessionKind.Bot, sessionId);
                }

                return await reader.IsDBNullAsync(0, ct) ? null : await reader.GetFieldValueAsync<byte[]>(0, ct);
            },
            cancellationToken);
    }

    public async Task<BotLease?> ClaimLeaseAsync(string sessionId, string nodeId, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        return await _database.WriteAsync<BotLease?>(
            async (connection, transaction, ct) =>
            {
                // One conditional statement: of two nodes claiming at once, the second waits for the row lock, then
                // sees a live lease of the first and updates nothing.
                await using var command = new NpgsqlCommand(
                    """
                    UPDATE bot_sessions SET lease_holder = @node, lease_expires_at = @expires, lease_epoch = lease_epoch + 1
                    WHERE session_id = @id AND status = 'active'
                      AND (lease_holder IS NULL OR lease_holder = @node OR lease_expires_at IS NULL OR lease_expires_at <= @now)
                    RETURNING lease_epoch, lease_expires_at
                    """,
                    connection,
                    transaction);
                var now = _time.GetUtcNow();
                command.Parameters.Add(Pg.Text("id", sessionId));
                command.Parameters.Add(Pg.Text("node", nodeId));
                command.Parameters.Add(Pg.Time("now", now));
                command.Parameters.Add(Pg.Time("expires", now + leaseDuration));
                await using var reader = await command.ExecuteReaderAsync(ct);
                return await reader.ReadAsync(ct) ? new BotLease(sessionId, nodeId, reader.GetInt64(0), reader.Time(1)) : null;
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<BotLease>> RenewLeasesAsync(string nodeId, TimeSpan leaseDuration, CancellationToken cancellationToken = default) =>
        _database.WriteAsync<IReadOnlyList<BotLease>>(
            async (connection, transaction, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    """
                    UPDATE bot_sessions SET lease_expires_at = @expires
                    WHERE lease_holder = @node AND status = 'active'
                    RETURNING session_id, lease_epoch, lease_expires_at
                    """,
                    connection,
                    transaction);
                command.Parameters.Add(Pg.Text("node", nodeId));
                command.Parameters.Add(Pg.Time("expires", _time.GetUtcNow() + leaseDuration));
                var leases = new List<BotLease>();
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    leases.Add(new BotLease(reader.GetString(0), nodeId, reader.GetInt64(1), reader.Time(2)));
                }

                return leases;
            },
            cancellationToken);

    public Task<IReadOnlyList<string>> ListClaimableAsync(string nodeId, int limit, CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<string>>(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    """
                    SELECT session_id FROM bot_sessions
                    WHERE status = 'active'
                      AND (connection_state IS NULL OR connection_state NOT IN ('failed', 'logged_out'))
                      AND (lease_holder IS NULL OR lease_holder = @node OR lease_expires_at IS NULL OR lease_expires_at <= @now)
                    ORDER BY session_id
                    LIMIT @limit
                    """,
                    connection);
                command.Parameters.Add(Pg.Text("node", nodeId));
                command.Parameters.Add(Pg.Time("now", _time.GetUtcNow()));
                command.Parameters.Add(Pg.Integer("limit", limit));
                var ids = new List<string>();
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    ids.Add(reader.GetString(0));
                }

                return ids;
            },
            cancellationToken);

    public Task<IReadOnlyList<string>> ReleaseLeasesAsync(string nodeId, CancellationToken cancellationToken = default) =>
        _database.WriteAsync<IReadOnlyList<string>>(
            async (connection, transaction, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    "UPDATE bot_sessions SET lease_holder = NULL, lease_expires_at = NULL WHERE lease_holder = @node RETURNING session_id",
                    connection,
                    transaction);
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

    public Task<string> EnsureSettingAsync(string name, string value, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                // ON CONFLICT DO NOTHING: of two first starts, the second waits for the first insert, then reads it.
                await using (var insert = new NpgsqlCommand(
                    "INSERT INTO store_settings (name, value, set_at) VALUES (@name, @value, @now) ON CONFLICT (name) DO NOTHING",
                    connection,
                    transaction))
                {
                    insert.Parameters.Add(Pg.Text("name", name));
                    insert.Parameters.Add(Pg.Text("value", value));
                    insert.Parameters.Add(Pg.Time("now", _time.GetUtcNow()));
                    await insert.ExecuteNonQueryAsync(ct);
                }

                await using var read = new NpgsqlCommand("SELECT value FROM store_settings WHERE name = @name", connection, transaction);
                read.Parameters.Add(Pg.Text("name", name));
                return (string)(await read.ExecuteScalarAsync(ct))!;
            },
            cancellationToken);

    public Task<Generation.ClaimLoad> ReadLeaseLoadAsync(string nodeId, TimeSpan liveWithin, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async (connection, ct) =>
            {
                // Live nodes: a heartbeat (the generation runner's renewal) within liveWithin and not stopped.
                await using var command = new NpgsqlCommand(
                    """
                    SELECT
                        (SELECT count(*)::int FROM cluster_nodes
                         WHERE node_id <> @node AND stopped_at IS NULL AND heartbeat_at > @live_after),
                        (SELECT count(*)::int FROM bot_sessions b JOIN cluster_nodes n ON n.node_id = b.lease_holder
                         WHERE b.status = 'active' AND b.lease_expires_at > @now
                           AND n.node_id <> @node AND n.stopped_at IS NULL AND n.heartbeat_at > @live_after),
                        (SELECT count(*)::int FROM bot_sessions WHERE status = 'active' AND lease_holder = @node AND lease_expires_at > @now)
                    """,
                    connection);
                var now = _time.GetUtcNow();
                command.Parameters.Add(Pg.Text("node", nodeId));
                command.Parameters.Add(Pg.Time("now", now));
                command.Parameters.Add(Pg.Time("live_after", now - liveWithin));
                await using var reader = await command.ExecuteReaderAsync(ct);
                await reader.ReadAsync(ct);
                return new Generation.ClaimLoad(reader.GetInt32(0), reader.GetInt32(1), reader.GetInt32(2));
            },
            cancellationToken);

    private static void BindLease(NpgsqlCommand command, BotLeaseRequest? lease, DateTimeOffset now)
    {
        command.Parameters.Add(Pg.Text("node", lease?.NodeId));
        command.Parameters.Add(Pg.Time("expires", lease is null ? null : now + lease.Duration));
    }

    private static BotLease? LeaseOf(BotSession session, BotLeaseRequest? lease) =>
        lease is not null && session.Holder is { } holder && holder.NodeId == lease.NodeId
            ? new BotLease(session.SessionId, holder.NodeId, holder.Epoch, holder.LeaseExpiresAt)
            : null;

    private async Task<BotSession> ChangeAsync(
        string sessionId,
        Actor actor,
        BotChangeRule rule,
        BotLease? fence,
        string update,
        Action<NpgsqlCommand> bind,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(actor);
        return await _database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                var existing = await ReadRowAsync(connection, transaction, sessionId, ct)
                    ?? throw new SessionNotFoundException(SessionKind.Bot, sessionId);
                if (fence is not null && (existing.Holder is not { } holder || holder.NodeId != fence.NodeId || holder.Epoch != fence.Epoch))
                {
                    // The holder's write with a lease that is no longer the row's (taken over, released or ended).
                    throw new LeaseLostException([sessionId]);
                }

                // The rule decides on the row as it is now, inside the write transaction.
                if (rule.Decide(existing) is not { } change)
                {
                    return existing;
                }

                var now = _time.GetUtcNow();
                var updated = await UpdateAsync(connection, transaction, existing, update, bind, now, ct);
                await PostgresAudit.AppendAsync(
                    connection, transaction, SessionKind.Bot, sessionId, actor, change.Action,
                    change.FromStatus, change.ToStatus, now, change.Detail, ct);
                return updated;
            },
            cancellationToken);
    }

    private static async Task<BotSession> UpdateAsync(
        NpgsqlConnection connection,
        NpgsqlTransaction transaction,
        BotSession existing,
        string update,
        Action<NpgsqlCommand> bind,
        DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        // `update` is one of this class's constant UPDATE statements (…Sql above).
        await using var command = new NpgsqlCommand(update, connection, transaction);
        command.Parameters.Add(Pg.Text("id", existing.SessionId));
        command.Parameters.Add(Pg.Bigint("version", existing.Version));
        command.Parameters.Add(Pg.Time("now", now));
        bind(command);
        return await ReadSingleAsync(command, cancellationToken)
            ?? throw new SessionConflictException($"Bot session '{existing.SessionId}' was changed concurrently; retry the request.");
    }

    private static async Task<BotSession?> ReadRowAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sessionId, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            transaction is null ? $"SELECT {Columns} FROM bot_sessions WHERE session_id = @id" : $"SELECT {Columns} FROM bot_sessions WHERE session_id = @id FOR UPDATE",
            connection,
            transaction);
        command.Parameters.Add(Pg.Text("id", sessionId));
        return await ReadSingleAsync(command, cancellationToken);
    }

    private static async Task<BotSession?> ReadSingleAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Map(reader) : null;
    }

    private static BotSession Map(NpgsqlDataReader reader) => new(
        SessionId: reader.GetString(0),
        CreatedAt: reader.Time(1),
        LastMessage: reader.NullableString(2),
        Status: BotSessionStatusNames.Parse(reader.GetString(3)),
        QrData: reader.NullableString(4),
        UpdatedAt: reader.Time(5),
        BotType: reader.NullableString(6) ?? WebBotConnector.TypeName,
        Owner: reader.NullableString(7),
        ConnectionDetail: reader.NullableString(8),
        Version: reader.NullableInt64(9) ?? 1,
        LastMessageAt: reader.NullableTime(10),
        Connection: reader.IsDBNull(11)
            ? null
            : new BotConnection(
                BotConnectionStates.Parse(reader.GetString(11)),
                reader.NullableString(12),
                reader.IsDBNull(13) ? null : reader.GetInt32(13),
                reader.NullableTime(14) ?? reader.Time(5)),
        QrSeq: reader.NullableInt64(15) ?? 0,
        QrSetAt: reader.NullableTime(16),
        QrAttempts: reader.IsDBNull(17) ? 0 : reader.GetInt32(17),
        Holder: reader.IsDBNull(18) || reader.IsDBNull(19) ? null : new Cluster.LeaseHolder(reader.GetString(18), reader.GetInt64(20), reader.Time(19)));
}
