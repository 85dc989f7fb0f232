using System.Globalization;
using Holdfast.Sessions;
using Holdfast.Webhooks;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary>
/// SQLite adapter of <see cref="IWebhookStore"/> (tables <c>webhook_subscriptions</c>, <c>webhook_outbox</c>, migration
/// 0010), and the outbox writer every change calls through <see cref="SqliteAudit"/> inside its own transaction.
/// </summary>
public sealed class SqliteWebhookStore(SqliteDatabase database, TimeProvider? time = null) : IWebhookStore
{
    private const string SubscriptionColumns = "id, owner, url, event_types, created_at";
    private const string DeliveryColumns =
        "id, subscription_id, event_type, session_kind, session_id, created_at, status, attempts, next_attempt_at, last_attempt_at, last_status, last_error, delivered_at";

    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public Task<WebhookSubscription> CreateSubscriptionAsync(NewWebhookSubscription subscription, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        return database.WriteAsync(
            async (connection, transaction) =>
            {
                await using var insert = connection.CreateCommand();
                insert.Transaction = transaction;
                insert.CommandText = $"""
                    INSERT INTO webhook_subscriptions (id, owner, url, event_types, secret, created_at)
                    VALUES ($id, $owner, $url, $types, $secret, $now)
                    RETURNING {SubscriptionColumns}
                    """;
                insert.Parameters.AddWithValue("$id", subscription.Id);
                insert.Parameters.AddWithValue("$owner", subscription.Owner);
                insert.Parameters.AddWithValue("$url", subscription.Url);
                insert.Parameters.AddWithValue("$types", WebhookEvents.Join(subscription.EventTypes));
                insert.Parameters.AddWithValue("$secret", subscription.ProtectedSecret);
                insert.Parameters.AddWithValue("$now", SqliteTime.Format(_time.GetUtcNow()));
                await using var reader = await insert.ExecuteReaderAsync(cancellationToken);
                await reader.ReadAsync(cancellationToken);
                return ReadSubscription(reader);
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<WebhookSubscription>> ListSubscriptionsAsync(string? owner, CancellationToken cancellationToken = default) =>
        database.ReadAsync<IReadOnlyList<WebhookSubscription>>(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = $"SELECT {SubscriptionColumns} FROM webhook_subscriptions WHERE ($owner IS NULL OR owner = $owner) ORDER BY id";
                command.Parameters.AddWithValue("$owner", (object?)owner ?? DBNull.Value);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                var list = new List<WebhookSubscription>();
                while (await reader.ReadAsync(cancellationToken))
                {
                    list.Add(ReadSubscription(reader));
                }

                return list;
            },
            cancellationToken);

    public Task<WebhookSubscription?> FindSubscriptionAsync(string id, CancellationToken cancellationToken = default) =>
        database.ReadAsync(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = $"SELECT {SubscriptionColumns} FROM webhook_subscriptions WHERE id = $id";
                command.Parameters.AddWithValue("$id", id);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                return await reader.ReadAsync(cancellationToken) ? ReadSubscription(reader) : null;
            },
            cancellationToken);

    public Task<bool> DeleteSubscriptionAsync(string id, CancellationToken cancellationToken = default) =>
        database.WriteAsync(
            async (connection, transaction) =>
            {
                await using var deliveries = connection.CreateCommand();
                deliveries.Transaction = transaction;
                deliveries.CommandText = "DELETE FROM webhook_outbox WHERE subscription_id = $id";
                deliveries.Parameters.AddWithValue("$id", id);
                await deliveries.ExecuteNonQueryAsync(cancellationToken);
                await using var subscription = connection.CreateCommand();
                subscription.Transaction = transaction;
                subscription.CommandText = "DELETE FROM webhook_subscriptions WHERE id = $id";
                subscription.Parameters.AddWithValue("$id", id);
                return await subscription.ExecuteNonQueryAsync(cancellationToken) > 0;
            },
            cancellationToken);

    public async Task<IReadOnlyList<WebhookDispatch>> ClaimDueAsync(int limit, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        // A read first: with nothing due (the common case) no write transaction takes the single writer.
        var anyDue = await database.ReadAsync(
            async connection =>
            {
                await using var probe = connection.CreateCommand();
                probe.CommandText = "SELECT EXISTS (SELECT 1 FROM webhook_outbox WHERE status = 'pending' AND next_attempt_at <= $now)";
                probe.Parameters.AddWithValue("$now", SqliteTime.Format(_time.GetUtcNow()));
                return (long)(await probe.ExecuteScalarAsync(cancellationToken))! == 1;
            },
            cancellationToken);
        return anyDue ? await ClaimAsync(limit, lease, cancellationToken) : [];
    }

    private Task<IReadOnlyList<WebhookDispatch>> ClaimAsync(int limit, TimeSpan lease, CancellationToken cancellationToken) =>
        database.WriteAsync<IReadOnlyList<WebhookDispatch>>(
            async (connection, transaction) =>
            {
                var now = _time.GetUtcNow();
                await using var claim = connection.CreateCommand();
                claim.Transaction = transaction;
                claim.CommandText = $"""
                    UPDATE webhook_outbox SET next_attempt_at = $lease_end
                    WHERE id IN (SELECT id FROM webhook_outbox WHERE status = 'pending' AND next_attempt_at <= $now ORDER BY next_attempt_at, id LIMIT $limit)
                    RETURNING {DeliveryColumns}, payload,
                              (SELECT url FROM webhook_subscriptions s WHERE s.id = subscription_id),
                              (SELECT secret FROM webhook_subscriptions s WHERE s.id = subscription_id)
                    """;
                claim.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                claim.Parameters.AddWithValue("$lease_end", SqliteTime.Format(now + lease));
                claim.Parameters.AddWithValue("$limit", limit);
                await using var reader = await claim.ExecuteReaderAsync(cancellationToken);
                var list = new List<WebhookDispatch>();
                while (await reader.ReadAsync(cancellationToken))
                {
                    if (await reader.IsDBNullAsync(15, cancellationToken))
                    {
                        continue; // The subscription is gone (deleted meanwhile).
                    }

                    list.Add(new WebhookDispatch(ReadDelivery(reader), reader.GetString(13), reader.GetString(14), (byte[])reader.GetValue(15)));
                }

                return list;
            },
            cancellationToken);

    public Task RecordAttemptAsync(WebhookAttempt attempt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        return database.WriteAsync(
            async (connection, transaction) =>
            {
                var now = _time.GetUtcNow();
                await using var update = connection.CreateCommand();
                update.Transaction = transaction;
                update.CommandText = """
                    UPDATE webhook_outbox
                    SET attempts = attempts + 1, last_attempt_at = $now, last_status = $code, last_error = $error,
                        status = $status, next_attempt_at = COALESCE($retry_at, next_attempt_at),
                        delivered_at = CASE WHEN $status = 'delivered' THEN $now ELSE NULL END
                    WHERE id = $id AND status = 'pending'
                    """;
                update.Parameters.AddWithValue("$id", attempt.DeliveryId);
                update.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                update.Parameters.AddWithValue("$code", (object?)attempt.StatusCode ?? DBNull.Value);
                update.Parameters.AddWithValue("$error", (object?)attempt.Error ?? DBNull.Value);
                update.Parameters.AddWithValue("$status", attempt.Delivered ? "delivered" : attempt.RetryAt is null ? "failed" : "pending");
                update.Parameters.AddWithValue("$retry_at", (object?)SqliteTime.Format(attempt.RetryAt) ?? DBNull.Value);
                return await update.ExecuteNonQueryAsync(cancellationToken);
            },
            cancellationToken);
    }

    public Task<WebhookDeliveryPage> ListDeliveriesAsync(string subscriptionId, string? before, int limit, CancellationToken cancellationToken = default)
    {
        var (beforeAt, beforeId) = WebhookCursor.Parse(before);
        return database.ReadAsync(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = $"""
                    SELECT {DeliveryColumns} FROM webhook_outbox
                    WHERE subscription_id = $sub AND ($before_at IS NULL OR created_at < $before_at OR (created_at = $before_at AND id < $before_id))
                    ORDER BY created_at DESC, id DESC LIMIT $limit
                    """;
                command.Parameters.AddWithValue("$sub", subscriptionId);
                command.Parameters.AddWithValue("$before_at", (object?)SqliteTime.Format(beforeAt) ?? DBNull.Value);
                command.Parameters.AddWithValue("$before_id", (object?)beforeId ?? DBNull.Value);
                command.Parameters.AddWithValue("$limit", limit + 1);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                var items = new List<WebhookDelivery>();
                while (await reader.ReadAsync(cancellationToken))
                {
                    items.Add(ReadDelivery(reader));
                }

                return WebhookCursor.Page(items, limit);
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<WebhookDelivery>> ListSessionDeliveriesAsync(string owner, SessionKind kind, string sessionId, int limit, CancellationToken cancellationToken = default) =>
        database.ReadAsync<IReadOnlyList<WebhookDelivery>>(
            async connection =>
            {
                // Through the owner's subscriptions (ix_webhook_outbox_subscription): a session's rows belong to those only.
                await using var command = connection.CreateCommand();
                command.CommandText = $"""
                    SELECT {DeliveryColumns} FROM webhook_outbox
                    WHERE subscription_id IN (SELECT id FROM webhook_subscriptions WHERE owner = $owner)
                      AND session_kind = $kind AND session_id = $session
                    ORDER BY created_at DESC, id DESC LIMIT $limit
                    """;
                command.Parameters.AddWithValue("$owner", owner);
                command.Parameters.AddWithValue("$kind", kind.ToWire());
                command.Parameters.AddWithValue("$session", sessionId);
                command.Parameters.AddWithValue("$limit", limit);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                var items = new List<WebhookDelivery>();
                while (await reader.ReadAsync(cancellationToken))
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
        SqliteConnection connection,
        SqliteTransaction transaction,
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

        await using var read = SqliteDatabase.Command(
            connection,
            transaction,
            kind == SessionKind.Bot
                ? """
                  SELECT owner, bot_type, status, last_message, last_message_at, qr_data, qr_seq, connection_state, connection_reason, connection_code
                  FROM bot_sessions WHERE session_id = $id
                  """
                : $"SELECT owner, model, status, {SqliteGenerationStore.LiveLastSeq} FROM generation_sessions WHERE id = $id");
        read.Parameters.AddWithValue("$id", sessionId);
        string? owner;
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
                fields["bot_type"] = await reader.IsDBNullAsync(1, cancellationToken) ? null : reader.GetString(1);
                fields["status"] = reader.GetString(2);
                fields["last_message"] = await reader.IsDBNullAsync(3, cancellationToken) ? null : reader.GetString(3);
                fields["last_message_at"] = await reader.IsDBNullAsync(4, cancellationToken) ? null : SqliteTime.Parse(reader.GetString(4));
                fields["qr_data"] = await reader.IsDBNullAsync(5, cancellationToken) ? null : reader.GetString(5);
                fields["qr_seq"] = reader.GetInt64(6);
                fields["connection"] = await reader.IsDBNullAsync(7, cancellationToken) ? null : new WebhookConnection(reader.GetString(7), await reader.IsDBNullAsync(8, cancellationToken) ? null : reader.GetString(8), await reader.IsDBNullAsync(9, cancellationToken) ? null : reader.GetInt32(9));
            }
            else
            {
                fields["model"] = reader.GetString(1);
                fields["status"] = reader.GetString(2);
                fields["last_seq"] = reader.GetInt64(3);
            }
        }

        var subscriptions = new List<(string, string)>();
        await using (var list = SqliteDatabase.Command(connection, transaction, "SELECT id, event_types FROM webhook_subscriptions WHERE owner = $owner"))
        {
            list.Parameters.AddWithValue("$owner", owner);
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
        await using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = """
            INSERT INTO webhook_outbox (id, subscription_id, event_type, session_kind, session_id, payload, created_at, status, attempts, next_attempt_at)
            VALUES ($id, $sub, $type, $kind, $session, $payload, $at, 'pending', 0, $at)
            """;
        var pId = insert.Parameters.Add("$id", SqliteType.Text);
        var pSub = insert.Parameters.Add("$sub", SqliteType.Text);
        insert.Parameters.AddWithValue("$type", type);
        insert.Parameters.AddWithValue("$kind", kind.ToWire());
        insert.Parameters.AddWithValue("$session", sessionId);
        insert.Parameters.AddWithValue("$payload", payload);
        insert.Parameters.AddWithValue("$at", SqliteTime.Format(at));
        foreach (var subscriptionId in matching)
        {
            pId.Value = WebhookEvents.NewMessageId();
            pSub.Value = subscriptionId;
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    private static WebhookSubscription ReadSubscription(SqliteDataReader reader) => new(
        reader.GetString(0), reader.GetString(1), reader.GetString(2), WebhookEvents.Split(reader.GetString(3)), SqliteTime.Parse(reader.GetString(4)));

    private static WebhookDelivery ReadDelivery(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        reader.GetString(2),
        reader.GetString(3),
        reader.GetString(4),
        SqliteTime.Parse(reader.GetString(5)),
        WebhookCursor.ParseStatus(reader.GetString(6)),
        reader.GetInt32(7),
        SqliteTime.Parse(reader.GetString(8)),
        reader.IsDBNull(9) ? null : SqliteTime.Parse(reader.GetString(9)),
        reader.IsDBNull(10) ? null : reader.GetInt32(10),
        reader.IsDBNull(11) ? null : reader.GetString(11),
        reader.IsDBNull(12) ? null : SqliteTime.Parse(reader.GetString(12)));
}
