using Holdfast.Sessions;
using Holdfast.Webhooks;
using Npgsql;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// PostgreSQL adapter of <see cref="IWebhookStore"/> (tables <c>webhook_subscriptions</c>, <c>webhook_outbox</c>,
/// migration 0010), and the outbox writer every change calls through <see cref="PostgresAudit"/> inside its own
/// transaction. Claims use <c>FOR UPDATE SKIP LOCKED</c>, so nodes never claim one delivery together.
/// </summary>
internal sealed class PostgresWebhookStore(PostgresDatabase database, TimeProvider time) : IWebhookStore
{
    private const string SubscriptionColumns = "id, owner, url, event_types, created_at";
    private const string DeliveryColumns =
        "id, subscription_id, event_type, session_kind, session_id, created_at, status, attempts, next_attempt_at, last_attempt_at, last_status, last_error, delivered_at";

    public Task<WebhookSubscription> CreateSubscriptionAsync(NewWebhookSubscription subscription, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        return database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                await using var insert = new NpgsqlCommand(
                    $"""
                    INSERT INTO webhook_subscriptions (id, owner, url, event_types, secret, created_at)
                    VALUES (@id, @owner, @url, @types, @secret, @now)
                    RETURNING {SubscriptionColumns}
                    """,
                    connection,
                    transaction);
                insert.Parameters.Add(Pg.Text("id", subscription.Id));
                insert.Parameters.Add(Pg.Text("owner", subscription.Owner));
                insert.Parameters.Add(Pg.Text("url", subscription.Url));
                insert.Parameters.Add(Pg.Text("types", WebhookEvents.Join(subscription.EventTypes)));
                insert.Parameters.Add(Pg.Bytea("secret", subscription.ProtectedSecret));
                insert.Parameters.Add(Pg.Time("now", time.GetUtcNow()));
                await using var reader = await insert.ExecuteReaderAsync(ct);
                await reader.ReadAsync(ct);
                return ReadSubscription(reader);
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<WebhookSubscription>> ListSubscriptionsAsync(string? owner, CancellationToken cancellationToken = default) =>
        database.ReadAsync<IReadOnlyList<WebhookSubscription>>(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    $"SELECT {SubscriptionColumns} FROM webhook_subscriptions WHERE (@owner::text IS NULL OR owner = @owner) ORDER BY id COLLATE \"C\"", connection);
                command.Parameters.Add(Pg.Text("owner", owner));
                await using var reader = await command.ExecuteReaderAsync(ct);
                var list = new List<WebhookSubscription>();
                while (await reader.ReadAsync(ct))
                {
                    list.Add(ReadSubscription(reader));
                }

                return list;
            },
            cancellationToken);

    public Task<WebhookSubscription?> FindSubscriptionAsync(string id, CancellationToken cancellationToken = default) =>
        database.ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand($"SELECT {SubscriptionColumns} FROM webhook_subscriptions WHERE id = @id", connection);
                command.Parameters.Add(Pg.Text("id", id));
                await using var reader = await command.ExecuteReaderAsync(ct);
                return await reader.ReadAsync(ct) ? ReadSubscription(reader) : null;
            },
            cancellationToken);

    public Task<bool> DeleteSubscriptionAsync(string id, CancellationToken cancellationToken = default) =>
        database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                await using (var deliveries = new NpgsqlCommand("DELETE FROM webhook_outbox WHERE subscription_id = @id", connection, transaction))
                {
                    deliveries.Parameters.Add(Pg.Text("id", id));
                    await deliveries.ExecuteNonQueryAsync(ct);
                }

                await using var subscription = new NpgsqlCommand("DELETE FROM webhook_subscriptions WHERE id = @id", connection, transaction);
                subscription.Parameters.Add(Pg.Text("id", id));
                return await subscription.ExecuteNonQueryAsync(ct) > 0;
            },
            cancellationToken);

    public async Task<IReadOnlyList<WebhookDispatch>> ClaimDueAsync(int limit, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        // A read first: with nothing due (the common case) no write transaction is opened.
        var anyDue = await database.ReadAsync(
            async (connection, ct) =>
            {
                await using var probe = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM webhook_outbox WHERE status = 'pending' AND next_attempt_at <= @now)", connection);
                probe.Parameters.Add(Pg.Time("now", time.GetUtcNow()));
                return (bool)(await probe.ExecuteScalarAsync(ct))!;
            },
            cancellationToken);
        return anyDue ? await ClaimAsync(limit, lease, cancellationToken) : [];
    }

    private Task<IReadOnlyList<WebhookDispatch>> ClaimAsync(int limit, TimeSpan lease, CancellationToken cancellationToken) =>
        database.WriteAsync<IReadOnlyList<WebhookDispatch>>(
            async (connection, transaction, ct) =>
            {
                var now = time.GetUtcNow();
                await using var claim = new NpgsqlCommand(
                    $"""
                    WITH due AS (
                        SELECT id FROM webhook_outbox
                        WHERE status = 'pending' AND next_attempt_at <= @now
                        ORDER BY next_attempt_at, id
                        LIMIT @limit
                        FOR UPDATE SKIP LOCKED)
                    UPDATE webhook_outbox o SET next_attempt_at = @lease_end
                    FROM due, webhook_subscriptions s
                    WHERE o.id = due.id AND s.id = o.subscription_id
                    RETURNING {string.Join(", ", DeliveryColumns.Split(", ").Select(c => "o." + c))}, o.payload, s.url, s.secret
                    """,
                    connection,
                    transaction);
                claim.Parameters.Add(Pg.Time("now", now));
                claim.Parameters.Add(Pg.Time("lease_end", now + lease));
                claim.Parameters.Add(Pg.Integer("limit", limit));
                await using var reader = await claim.ExecuteReaderAsync(ct);
                var list = new List<WebhookDispatch>();
                while (await reader.ReadAsync(ct))
                {
                    list.Add(new WebhookDispatch(ReadDelivery(reader), reader.GetString(13), reader.GetString(14), await reader.GetFieldValueAsync<byte[]>(15, ct)));
                }

                return list;
            },
            cancellationToken);

    public Task RecordAttemptAsync(WebhookAttempt attempt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        return database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                await using var update = new NpgsqlCommand(
                    """
                    UPDATE webhook_outbox
                    SET attempts = attempts + 1, last_attempt_at = @now, last_status = @code, last_error = @error,
                        status = @status, next_attempt_at = COALESCE(@retry_at, next_attempt_at),
                        delivered_at = CASE WHEN @status = 'delivered' THEN @now ELSE NULL END
                    WHERE id = @id AND status = 'pending'
                    """,
                    connection,
                    transaction);
                update.Parameters.Add(Pg.Text("id", attempt.DeliveryId));
                update.Parameters.Add(Pg.Time("now", time.GetUtcNow()));
                update.Parameters.Add(Pg.Integer("code", attempt.StatusCode));
                update.Parameters.Add(Pg.Text("error", attempt.Error));
                update.Parameters.Add(Pg.Text("status", attempt.Delivered ? "delivered" : attempt.RetryAt is null ? "failed" : "pending"));
                update.Parameters.Add(Pg.Time("retry_at", attempt.RetryAt));
                return await update.ExecuteNonQueryAsync(ct);
            },
            cancellationToken);
    }

    public Task<WebhookDeliveryPage> ListDeliveriesAsync(string subscriptionId, string? before, int limit, CancellationToken cancellationToken = default)
    {
        var (beforeAt, beforeId) = WebhookCursor.Parse(before);
        return database.ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    $"""
                    SELECT {DeliveryColumns} FROM webhook_outbox
                    WHERE subscription_id = @sub
                      AND (@before_at::timestamptz IS NULL OR created_at < @before_at OR (created_at = @before_at AND id COLLATE "C" < @before_id))
                    ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT @limit
                    """,
                    connection);
                command.Parameters.Add(Pg.Text("sub", subscriptionId));
                command.Parameters.Add(Pg.Time("before_at", beforeAt));
                command.Parameters.Add(Pg.Text("before_id", beforeId));
                command.Parameters.Add(Pg.Integer("limit", limit + 1));
                await using var reader = await command.ExecuteReaderAsync(ct);
                var items = new List<WebhookDelivery>();
                while (await reader.ReadAsync(ct))
                {
                    items.Add(ReadDelivery(reader));
                }

                return WebhookCursor.Page(items, limit);
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<WebhookDelivery>> ListSessionDeliveriesAsync(string owner, SessionKind kind, string sessionId, int limit, CancellationToken cancellationToken = default) =>
        database.ReadAsync<IReadOnlyList<WebhookDelivery>>(
            async (connection, ct) =>
            {
                // Through the owner's subscriptions (ix_webhook_outbox_subscription): a session's rows belong to those only.
                await using var command = new NpgsqlCommand(
                    $"""
                    SELECT {DeliveryColumns} FROM webhook_outbox
                    WHERE subscription_id IN (SELECT id FROM webhook_subscriptions WHERE owner = @owner)
                      AND session_kind = @kind AND session_id = @session
                    ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT @limit
                    """,
                    connection);
                command.Parameters.Add(Pg.Text("owner", owner));
                command.Parameters.Add(Pg.Text("kind", kind.ToWire()));
                command.Parameters.Add(Pg.Text("session", sessionId));
                command.Parameters.Add(Pg.Integer("limit", limit));
                await using var reader = await command.ExecuteReaderAsync(ct);
                var items = new List<WebhookDelivery>();
                while (await reader.ReadAsync(ct))
                {
                    items.Add(ReadDelivery(reader));
                }

                return items;
            },
            cancellationToken);

    /// <summary>
    /// Writes the outbox rows of one audit event inside the change's transaction: one per subscription of the session's
    /// owner that lists the event type (<see cref="WebhookEvents.ForAudit"/>). Nothing when it is no event or nobody listens.
    /// </summary>
    internal static async Task EnqueueAsync(
        NpgsqlConnection connection,
        NpgsqlTransaction transaction,
        SessionKind kind,
        string sessionId,
        string action,
        string? fromState,
        string? toState,
        DateTimeOffset at,
        string? detail,
        CancellationToken cancellationToken)
    {
        if (WebhookEvents.ForAudit(kind, action, fromState, toState) is not { } type)
        {
            return;
        }

        await using var read = new NpgsqlCommand(
            kind == SessionKind.Bot
                ? """
                  SELECT owner, bot_type, status, last_message, last_message_at, qr_data, qr_seq, connection_state, connection_reason, connection_code
                  FROM bot_sessions WHERE session_id = @id
                  """
                : "SELECT owner, model, status, last_seq FROM generation_sessions WHERE id = @id",
            connection,
            transaction);
        read.Parameters.Add(Pg.Text("id", sessionId));
        string owner;
        var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
        await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
        {
            if (!await reader.ReadAsync(cancellationToken) || await reader.IsDBNullAsync(0, cancellationToken))
            {
                return;
            }

            owner = reader.GetString(0);
            if (kind == SessionKind.Bot)
            {
                fields["bot_type"] = reader.NullableString(1);
                fields["status"] = reader.GetString(2);
                fields["last_message"] = reader.NullableString(3);
                fields["last_message_at"] = reader.NullableTime(4);
                fields["qr_data"] = reader.NullableString(5);
                fields["qr_seq"] = reader.GetInt64(6);
                fields["connection"] = await reader.IsDBNullAsync(7, cancellationToken) ? null : new WebhookConnection(reader.GetString(7), reader.NullableString(8), await reader.IsDBNullAsync(9, cancellationToken) ? null : reader.GetInt32(9));
            }
            else
            {
                fields["model"] = reader.GetString(1);
                fields["status"] = reader.GetString(2);
                fields["last_seq"] = reader.GetInt64(3);
            }
        }

        var subscriptions = new List<(string, string)>();
        await using (var list = new NpgsqlCommand("SELECT id, event_types FROM webhook_subscriptions WHERE owner = @owner", connection, transaction))
        {
            list.Parameters.Add(Pg.Text("owner", owner));
            await using var reader = await list.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                subscriptions.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        var matching = WebhookEvents.Matching(subscriptions, type);
        if (matching.Count == 0)
        {
            return;
        }

        var payload = WebhookEvents.Payload(type, kind, sessionId, action, fromState, toState, detail, at, fields);
        await using var insert = new NpgsqlCommand(
            """
            INSERT INTO webhook_outbox (id, subscription_id, event_type, session_kind, session_id, payload, created_at, status, attempts, next_attempt_at)
            SELECT i, s, @type, @kind, @session, @payload, @at, 'pending', 0, @at FROM unnest(@ids, @subs) AS t(i, s)
            """,
            connection,
            transaction);
        insert.Parameters.Add(Pg.TextArray("ids", matching.Select(_ => WebhookEvents.NewMessageId()).ToArray()));
        insert.Parameters.Add(Pg.TextArray("subs", [.. matching]));
        insert.Parameters.Add(Pg.Text("type", type));
        insert.Parameters.Add(Pg.Text("kind", kind.ToWire()));
        insert.Parameters.Add(Pg.Text("session", sessionId));
        insert.Parameters.Add(Pg.Text("payload", payload));
        insert.Parameters.Add(Pg.Time("at", at));
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    private static WebhookSubscription ReadSubscription(NpgsqlDataReader reader) => new(
        reader.GetString(0), reader.GetString(1), reader.GetString(2), WebhookEvents.Split(reader.GetString(3)), reader.Time(4));

    private static WebhookDelivery ReadDelivery(NpgsqlDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        reader.GetString(2),
        reader.GetString(3),
        reader.GetString(4),
        reader.Time(5),
        WebhookCursor.ParseStatus(reader.GetString(6)),
        reader.GetInt32(7),
        reader.Time(8),
        reader.NullableTime(9),
        reader.IsDBNull(10) ? null : reader.GetInt32(10),
        reader.NullableString(11),
        reader.NullableTime(12));
}
