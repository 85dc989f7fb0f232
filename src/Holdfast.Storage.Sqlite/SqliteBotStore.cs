using System.Globalization;
using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary>
/// <see cref="IBotStore"/> over the embedded SQLite file. Each change is one IMMEDIATE transaction on the single
/// writer path: read the row, check the request, update it with <c>version = version + 1</c> guarded by the version
/// read, append the audit event, commit. Writers are serialised (in-process by the writer gate, across processes by
/// SQLite's write lock), so concurrent changes of one session never lose a write.
/// </summary>
internal sealed class SqliteBotStore : IBotStore
{
    private const string Columns =
        "session_id, created_at, last_message, status, qr_data, updated_at, bot_type, owner, connection_detail, version, last_message_at, " +
        "connection_state, connection_reason, connection_code, connection_changed_at, qr_seq, qr_set_at, qr_attempts, " +
        "lease_holder, lease_expires_at, lease_epoch";

    // One complete UPDATE per change, each guarded by the version read in the same transaction ($id, $version) and
    // stamping updated_at ($now); every value is a parameter. {Columns} is a compile-time constant.
    private const string ReactivateSql = $"""
        UPDATE bot_sessions
        SET status = 'active', bot_type = $bot_type, connection_detail = NULL,
            connection_state = 'starting', connection_reason = NULL, connection_code = NULL, connection_changed_at = $now,
            updated_at = $now, version = version + 1,
            lease_holder = COALESCE($node, lease_holder),
            lease_expires_at = CASE WHEN $node IS NULL THEN lease_expires_at ELSE $expires END,
            lease_epoch = CASE WHEN $node IS NULL THEN lease_epoch ELSE lease_epoch + 1 END
        WHERE session_id = $id AND version = $version
        RETURNING {Columns}
        """;

    private const string AssignOwnerSql = $"""
        UPDATE bot_sessions SET owner = $owner, updated_at = $now, version = version + 1
        WHERE session_id = $id AND version = $version
        RETURNING {Columns}
        """;

    private const string SetQrSql = $"""
        UPDATE bot_sessions
        SET qr_data = $qr, updated_at = $now, version = version + 1,
            qr_seq = CASE WHEN $qr IS NULL THEN qr_seq ELSE qr_seq + 1 END,
            qr_set_at = CASE WHEN $qr IS NULL THEN qr_set_at ELSE $now END,
            qr_attempts = CASE WHEN $qr IS NULL THEN qr_attempts ELSE qr_attempts + 1 END
        WHERE session_id = $id AND version = $version
        RETURNING {Columns}
        """;

    private const string RecordMessageSql = $"""
        UPDATE bot_sessions SET last_message = $text, last_message_at = COALESCE($at, $now), updated_at = $now, version = version + 1
        WHERE session_id = $id AND version = $version
        RETURNING {Columns}
        """;

    private const string SetConnectionSql = $"""
        UPDATE bot_sessions SET connection_detail = $detail, updated_at = $now, version = version + 1
        WHERE session_id = $id AND version = $version
        RETURNING {Columns}
        """;

    private const string SetConnectionStateSql = $"""
        UPDATE bot_sessions
        SET connection_state = $state, connection_reason = $reason, connection_code = $code, connection_changed_at = $now,
            connection_detail = $detail, qr_data = CASE WHEN $state = 'connected' THEN NULL ELSE qr_data END,
            qr_attempts = CASE WHEN $state = 'connected' THEN 0 ELSE qr_attempts END,
            updated_at = $now, version = version + 1,
            lease_holder = CASE WHEN $state IN ('failed', 'logged_out') THEN NULL ELSE lease_holder END,
            lease_expires_at = CASE WHEN $state IN ('failed', 'logged_out') THEN NULL ELSE lease_expires_at END
        WHERE session_id = $id AND version = $version
        RETURNING {Columns}
        """;

    private const string EndSql = $"""
        UPDATE bot_sessions SET status = 'inactive', qr_data = NULL, connection_detail = NULL,
            connection_state = CASE WHEN connection_state IN ('logged_out', 'failed') THEN connection_state ELSE 'disconnected' END,
            connection_reason = CASE WHEN connection_state IN ('logged_out', 'failed') THEN connection_reason ELSE 'ended' END,
            connection_changed_at = $now, updated_at = $now, version = version + 1,
            lease_holder = NULL, lease_expires_at = NULL
        WHERE session_id = $id AND version = $version
        RETURNING {Columns}
        """;

    private const string SaveAuthStateSql = $"""
        UPDATE bot_sessions SET auth_state = $state, updated_at = $now, version = version + 1
        WHERE session_id = $id AND version = $version
        RETURNING {Columns}
        """;

    private const int SqlitePrimaryKeyViolation = 1555; // SQLITE_CONSTRAINT_PRIMARYKEY
    private const int SqliteUniqueViolation = 2067; // SQLITE_CONSTRAINT_UNIQUE

    private readonly SqliteDatabase _database;
    private readonly TimeProvider _time;

    public SqliteBotStore(SqliteDatabase database, TimeProvider time)
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
        return await WriteAsync(
            async (connection, transaction) =>
            {
                var now = _time.GetUtcNow();
                var existing = await ReadRowAsync(connection, transaction, request.SessionId, cancellationToken);
                var plan = BotRules.DecideStart(existing, request);
                if (plan.Outcome == BotStartOutcome.AlreadyActive)
                {
                    return new BotStartResult(existing!, BotStartOutcome.AlreadyActive);
                }

                if (existing is null)
                {
                    await using var insert = connection.CreateCommand();
                    insert.Transaction = transaction;
                    insert.CommandText = $"""
                        INSERT INTO bot_sessions (session_id, created_at, last_message, status, qr_data, updated_at, bot_type, owner, connection_detail, version,
                                                  connection_state, connection_changed_at, lease_holder, lease_expires_at, lease_epoch)
                        VALUES ($id, $now, NULL, 'active', NULL, $now, $bot_type, $owner, NULL, 1, 'starting', $now,
                                $node, CASE WHEN $node IS NULL THEN NULL ELSE $expires END, CASE WHEN $node IS NULL THEN 0 ELSE 1 END)
                        RETURNING {Columns}
                        """;
                    insert.Parameters.AddWithValue("$id", request.SessionId);
                    insert.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                    insert.Parameters.AddWithValue("$bot_type", request.BotType);
                    insert.Parameters.AddWithValue("$owner", (object?)request.Owner ?? DBNull.Value);
                    BindLease(insert, lease, now);
                    var created = await ReadSingleAsync(insert, cancellationToken);
                    await SqliteAudit.AppendAsync(
                        connection, transaction, SessionKind.Bot, request.SessionId, actor, AuditActions.BotCreated, null, "active", now,
                        plan.Detail, cancellationToken);
                    return new BotStartResult(created!, BotStartOutcome.Created, LeaseOf(created!, lease));
                }

                var reactivated = await UpdateAsync(
                    connection,
                    transaction,
                    existing,
                    ReactivateSql,
                    command =>
                    {
                        command.Parameters.AddWithValue("$bot_type", request.BotType);
                        BindLease(command, lease, now);
                    },
                    now,
                    cancellationToken);
                await SqliteAudit.AppendAsync(
                    connection, transaction, SessionKind.Bot, request.SessionId, actor, AuditActions.BotReactivated, "inactive", "active", now, plan.Detail, cancellationToken);
                return new BotStartResult(reactivated, BotStartOutcome.Reactivated, LeaseOf(reactivated, lease));
            },
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
            bind: command => command.Parameters.AddWithValue("$owner", owner),
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
            bind: command => command.Parameters.AddWithValue("$qr", (object?)qrData ?? DBNull.Value),
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

        // Decided inside the write transaction, so concurrent messages cannot overtake each other: only forward. A
        // message without a runtime time is stamped when it commits, so it is never older than the stored one.
        return ChangeAsync(
            sessionId,
            actor,
            BotRules.RecordMessage(text, receivedAt),
            fence,
            update: RecordMessageSql,
            bind: command =>
            {
                command.Parameters.AddWithValue("$text", text);
                command.Parameters.AddWithValue("$at", (object?)SqliteTime.Format(receivedAt) ?? DBNull.Value);
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
                command.Parameters.AddWithValue("$state", wire);
                command.Parameters.AddWithValue("$reason", (object?)reason ?? DBNull.Value);
                command.Parameters.AddWithValue("$code", (object?)code ?? DBNull.Value);
                command.Parameters.AddWithValue("$detail", (object?)detail ?? DBNull.Value);
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
            bind: command => command.Parameters.AddWithValue("$detail", (object?)connectionDetail ?? DBNull.Value),
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
        return await _database.ReadAsync(connection => ReadRowAsync(connection, null, sessionId, cancellationToken), cancellationToken);
    }

    public async Task<BotPage> ListAsync(BotListQuery query, CancellationToken cancellationToken = default)
    {
        query = BotLimits.ValidateList(query);
        return await _database.ReadAsync(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = $"""
                    SELECT {Columns} FROM bot_sessions
                    WHERE ($status IS NULL OR status = $status)
                      AND ($owner IS NULL OR owner = $owner)
                      AND ($after IS NULL OR session_id > $after)
                    ORDER BY session_id
                    LIMIT $limit
                    """;
                command.Parameters.AddWithValue("$status", (object?)query.Status?.ToWire() ?? DBNull.Value);
                command.Parameters.AddWithValue("$owner", (object?)query.Owner ?? DBNull.Value);
                command.Parameters.AddWithValue("$after", (object?)query.After ?? DBNull.Value);
                command.Parameters.AddWithValue("$limit", query.Limit + 1);
                var items = new List<BotSession>();
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    items.Add(Map(reader));
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
            // The blob is encrypted: the plaintext limit plus the envelope (format, nonce, tag).
            BotLimits.ValidateAuthState(blob.Length, BotLimits.AuthStateEnvelopeBytes);
        }

        var bytes = protectedState?.ToArray();
        return ChangeAsync(
            sessionId,
            actor,
            BotRules.SaveAuthState(bytes?.Length),
            fence,
            update: SaveAuthStateSql,
            bind: command => command.Parameters.Add("$state", SqliteType.Blob).Value = (object?)bytes ?? DBNull.Value,
            cancellationToken);
    }

    public async Task<byte[]?> LoadAuthStateAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        return await _database.ReadAsync(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = "SELECT auth_state FROM bot_sessions WHERE session_id = $id";
                command.Parameters.AddWithValue("$id", sessionId);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                if (!await reader.ReadAsync(cancellationToken))
                {
                    throw new SessionNotFoundException(SessionKind.Bot, sessionId);
                }

                return await reader.IsDBNullAsync(0, cancellationToken) ? null : (byte[])reader.GetValue(0);
            },
            cancellationToken);
    }

    public async Task<BotLease?> ClaimLeaseAsync(string sessionId, string nodeId, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        return await WriteAsync<BotLease?>(
            async (connection, transaction) =>
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = """
                    UPDATE bot_sessions SET lease_holder = $node, lease_expires_at = $expires, lease_epoch = lease_epoch + 1
                    WHERE session_id = $id AND status = 'active'
                      AND (lease_holder IS NULL OR lease_holder = $node OR lease_expires_at IS NULL OR lease_expires_at <= $now)
                    RETURNING lease_epoch
                    """;
                var now = _time.GetUtcNow();
                var expires = now + leaseDuration;
                command.Parameters.AddWithValue("$id", sessionId);
                command.Parameters.AddWithValue("$node", nodeId);
                command.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                command.Parameters.AddWithValue("$expires", SqliteTime.Format(expires));
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                return await reader.ReadAsync(cancellationToken) ? new BotLease(sessionId, nodeId, reader.GetInt64(0), expires) : null;
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<BotLease>> RenewLeasesAsync(string nodeId, TimeSpan leaseDuration, CancellationToken cancellationToken = default) =>
        _database.WriteAheadAsync<IReadOnlyList<BotLease>>(
            async (connection, transaction) =>
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = """
                    UPDATE bot_sessions SET lease_expires_at = $expires
                    WHERE lease_holder = $node AND status = 'active'
                    RETURNING session_id, lease_epoch
                    """;
                var expires = _time.GetUtcNow() + leaseDuration;
                command.Parameters.AddWithValue("$node", nodeId);
                command.Parameters.AddWithValue("$expires", SqliteTime.Format(expires));
                var leases = new List<BotLease>();
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    leases.Add(new BotLease(reader.GetString(0), nodeId, reader.GetInt64(1), expires));
                }

                return leases;
            },
            cancellationToken);

    public Task<IReadOnlyList<string>> ListClaimableAsync(string nodeId, int limit, CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<string>>(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    SELECT session_id FROM bot_sessions
                    WHERE status = 'active'
                      AND (connection_state IS NULL OR connection_state NOT IN ('failed', 'logged_out'))
                      AND (lease_holder IS NULL OR lease_holder = $node OR lease_expires_at IS NULL OR lease_expires_at <= $now)
                    ORDER BY session_id
                    LIMIT $limit
                    """;
                command.Parameters.AddWithValue("$node", nodeId);
                command.Parameters.AddWithValue("$now", SqliteTime.Format(_time.GetUtcNow()));
                command.Parameters.AddWithValue("$limit", limit);
                var ids = new List<string>();
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    ids.Add(reader.GetString(0));
                }

                return ids;
            },
            cancellationToken);

    public Task<Generation.ClaimLoad> ReadLeaseLoadAsync(string nodeId, TimeSpan liveWithin, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async connection =>
            {
                // One node holds every lease on SQLite; the query is the same as on a shared store.
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    SELECT
                        (SELECT count(*) FROM cluster_nodes
                         WHERE node_id <> $node AND stopped_at IS NULL AND heartbeat_at > $live_after),
                        (SELECT count(*) FROM bot_sessions b JOIN cluster_nodes n ON n.node_id = b.lease_holder
                         WHERE b.status = 'active' AND b.lease_expires_at > $now
                           AND n.node_id <> $node AND n.stopped_at IS NULL AND n.heartbeat_at > $live_after),
                        (SELECT count(*) FROM bot_sessions WHERE status = 'active' AND lease_holder = $node AND lease_expires_at > $now)
                    """;
                var now = _time.GetUtcNow();
                command.Parameters.AddWithValue("$node", nodeId);
                command.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                command.Parameters.AddWithValue("$live_after", SqliteTime.Format(now - liveWithin));
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                await reader.ReadAsync(cancellationToken);
                return new Generation.ClaimLoad(reader.GetInt32(0), reader.GetInt32(1), reader.GetInt32(2));
            },
            cancellationToken);

    private static void BindLease(SqliteCommand command, BotLeaseRequest? lease, DateTimeOffset now)
    {
        command.Parameters.AddWithValue("$node", (object?)lease?.NodeId ?? DBNull.Value);
        command.Parameters.AddWithValue("$expires", lease is null ? DBNull.Value : (object)SqliteTime.Format(now + lease.Duration));
    }

    private static BotLease? LeaseOf(BotSession session, BotLeaseRequest? lease) =>
        lease is not null && session.Holder is { } holder && holder.NodeId == lease.NodeId
            ? new BotLease(session.SessionId, holder.NodeId, holder.Epoch, holder.LeaseExpiresAt)
            : null;

    public Task<IReadOnlyList<string>> ReleaseLeasesAsync(string nodeId, CancellationToken cancellationToken = default) =>
        WriteAsync<IReadOnlyList<string>>(
            async (connection, transaction) =>
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = "UPDATE bot_sessions SET lease_holder = NULL, lease_expires_at = NULL WHERE lease_holder = $node RETURNING session_id";
                command.Parameters.AddWithValue("$node", nodeId);
                var ids = new List<string>();
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    ids.Add(reader.GetString(0));
                }

                return ids;
            },
            cancellationToken);

    public Task<string> EnsureSettingAsync(string name, string value, CancellationToken cancellationToken = default) =>
        WriteAsync(
            async (connection, transaction) =>
            {
                await using (var insert = connection.CreateCommand())
                {
                    insert.Transaction = transaction;
                    insert.CommandText = "INSERT INTO store_settings (name, value, set_at) VALUES ($name, $value, $now) ON CONFLICT (name) DO NOTHING";
                    insert.Parameters.AddWithValue("$name", name);
                    insert.Parameters.AddWithValue("$value", value);
                    insert.Parameters.AddWithValue("$now", SqliteTime.Format(_time.GetUtcNow()));
                    await insert.ExecuteNonQueryAsync(cancellationToken);
                }

                await using var read = connection.CreateCommand();
                read.Transaction = transaction;
                read.CommandText = "SELECT value FROM store_settings WHERE name = $name";
                read.Parameters.AddWithValue("$name", name);
                return (string)(await read.ExecuteScalarAsync(cancellationToken))!;
            },
            cancellationToken);

    private async Task<BotSession> ChangeAsync(
        string sessionId,
        Actor actor,
        BotChangeRule rule,
        BotLease? fence,
        string update,
        Action<SqliteCommand> bind,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(actor);
        return await WriteAsync(
            async (connection, transaction) =>
            {
                var existing = await ReadRowAsync(connection, transaction, sessionId, cancellationToken)
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
                var updated = await UpdateAsync(connection, transaction, existing, update, bind, now, cancellationToken);
                await SqliteAudit.AppendAsync(
                    connection, transaction, SessionKind.Bot, sessionId, actor, change.Action,
                    change.FromStatus, change.ToStatus, now, change.Detail, cancellationToken);
                return updated;
            },
            cancellationToken);
    }

    private static async Task<BotSession> UpdateAsync(
        SqliteConnection connection,
        SqliteTransaction transaction,
        BotSession existing,
        string update,
        Action<SqliteCommand> bind,
        DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;

        // `update` is one of this class's constant UPDATE statements (…Sql above).
        command.CommandText = update;
        command.Parameters.AddWithValue("$id", existing.SessionId);
        command.Parameters.AddWithValue("$version", existing.Version);
        command.Parameters.AddWithValue("$now", SqliteTime.Format(now));
        bind(command);
        return await ReadSingleAsync(command, cancellationToken)
            ?? throw new SessionConflictException($"Bot session '{existing.SessionId}' was changed concurrently; retry the request.");
    }

    private async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            return await _database.WriteAsync(work, cancellationToken);
        }
        catch (SqliteException ex) when (ex.SqliteExtendedErrorCode is SqlitePrimaryKeyViolation or SqliteUniqueViolation)
        {
            throw new SessionConflictException("The bot session was changed concurrently (constraint violation); retry the request.");
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is not (5 or 6))
        {
            // Not the caller's input (a failed audit write, a full disk, …): the transaction was rolled back whole.
            throw new StoreUnavailableException($"The bot session change was not stored: {ex.Message.TrimEnd('.')}; nothing was changed.", ex);
        }
    }

    private static async Task<BotSession?> ReadRowAsync(SqliteConnection connection, SqliteTransaction? transaction, string sessionId, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"SELECT {Columns} FROM bot_sessions WHERE session_id = $id";
        command.Parameters.AddWithValue("$id", sessionId);
        return await ReadSingleAsync(command, cancellationToken);
    }

    private static async Task<BotSession?> ReadSingleAsync(SqliteCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Map(reader) : null;
    }

    private static BotSession Map(SqliteDataReader reader) => new(
        SessionId: reader.GetString(0),
        CreatedAt: SqliteTime.Parse(reader.GetString(1)),
        LastMessage: reader.IsDBNull(2) ? null : reader.GetString(2),
        Status: BotSessionStatusNames.Parse(reader.GetString(3)),
        QrData: reader.IsDBNull(4) ? null : reader.GetString(4),
        UpdatedAt: SqliteTime.Parse(reader.GetString(5)),
        BotType: reader.IsDBNull(6) ? WebBotConnector.TypeName : reader.GetString(6),
        Owner: reader.IsDBNull(7) ? null : reader.GetString(7),
        ConnectionDetail: reader.IsDBNull(8) ? null : reader.GetString(8),
        Version: reader.IsDBNull(9) ? 1 : reader.GetInt64(9),
        LastMessageAt: reader.IsDBNull(10) ? null : SqliteTime.Parse(reader.GetString(10)),
        Connection: reader.IsDBNull(11)
            ? null
            : new BotConnection(
                BotConnectionStates.Parse(reader.GetString(11)),
                reader.IsDBNull(12) ? null : reader.GetString(12),
                reader.IsDBNull(13) ? null : reader.GetInt32(13),
                reader.IsDBNull(14) ? SqliteTime.Parse(reader.GetString(5)) : SqliteTime.Parse(reader.GetString(14))),
        QrSeq: reader.IsDBNull(15) ? 0 : reader.GetInt64(15),
        QrSetAt: reader.IsDBNull(16) ? null : SqliteTime.Parse(reader.GetString(16)),
        QrAttempts: reader.IsDBNull(17) ? 0 : reader.GetInt32(17),
        Holder: reader.IsDBNull(18) || reader.IsDBNull(19) ? null : new Cluster.LeaseHolder(reader.GetString(18), reader.GetInt64(20), SqliteTime.Parse(reader.GetString(19))));
}
