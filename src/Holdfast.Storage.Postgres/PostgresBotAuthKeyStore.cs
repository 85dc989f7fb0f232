using System.Globalization;
using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;
using Npgsql;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// PostgreSQL adapter of <see cref="IBotAuthKeyStore"/>: table <c>bot_auth_keys</c> (migration 0006). A write is one
/// transaction that locks the session row (<c>FOR SHARE</c>), so an end or delete cannot interleave.
/// </summary>
internal sealed class PostgresBotAuthKeyStore(PostgresDatabase database, TimeProvider time) : IBotAuthKeyStore
{
    public async Task<IReadOnlyDictionary<string, byte[]>> ReadAuthKeysAsync(
        string sessionId,
        string keyType,
        IReadOnlyCollection<string> keyIds,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keyIds);
        var ids = keyIds.Distinct(StringComparer.Ordinal).ToArray();
        return await database.ReadAsync<IReadOnlyDictionary<string, byte[]>>(
            async (connection, ct) =>
            {
                await RequireSessionAsync(connection, null, sessionId, ct);
                var found = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                await using var command = new NpgsqlCommand(
                    "SELECT key_id, value FROM bot_auth_keys WHERE session_id = @id AND key_type = @type AND key_id = ANY(@keys)",
                    connection);
                command.Parameters.Add(Pg.Text("id", sessionId));
                command.Parameters.Add(Pg.Text("type", keyType));
                command.Parameters.Add(Pg.TextArray("keys", ids));
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    found[reader.GetString(0)] = await reader.GetFieldValueAsync<byte[]>(1, ct);
                }

                return found;
            },
            cancellationToken);
    }

    public async Task WriteAuthKeysAsync(string sessionId, IReadOnlyList<BotAuthKeyChange> changes, Actor actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(actor);
        await database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                var status = await RequireSessionAsync(connection, transaction, sessionId, ct);
                var now = time.GetUtcNow();
                int stored = 0, deleted = 0;
                foreach (var change in changes)
                {
                    await using var command = change.Value is null
                        ? new NpgsqlCommand(
                            "DELETE FROM bot_auth_keys WHERE session_id = @id AND key_type = @type AND key_id = @key", connection, transaction)
                        : new NpgsqlCommand(
                            """
                            INSERT INTO bot_auth_keys (session_id, key_type, key_id, value, updated_at) VALUES (@id, @type, @key, @value, @now)
                            ON CONFLICT (session_id, key_type, key_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                            """,
                            connection,
                            transaction);
                    command.Parameters.Add(Pg.Text("id", sessionId));
                    command.Parameters.Add(Pg.Text("type", change.KeyType));
                    command.Parameters.Add(Pg.Text("key", change.KeyId));
                    if (change.Value is { } value)
                    {
                        command.Parameters.Add(Pg.Bytea("value", value));
                        command.Parameters.Add(Pg.Time("now", now));
                        stored++;
                    }
                    else
                    {
                        deleted++;
                    }

                    await command.ExecuteNonQueryAsync(ct);
                }

                // The audit event names counts and types only, never a key's value.
                var types = string.Join(", ", changes.Select(c => c.KeyType).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
                await PostgresAudit.AppendAsync(
                    connection, transaction, SessionKind.Bot, sessionId, actor, "bot.auth_keys", status, status, now,
                    string.Create(CultureInfo.InvariantCulture, $"{stored} keys stored, {deleted} deleted ({types}; encrypted)"),
                    ct);
                return 0;
            },
            cancellationToken);
    }

    private static async Task<string> RequireSessionAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sessionId, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            transaction is null
                ? "SELECT status FROM bot_sessions WHERE session_id = @id"
                : "SELECT status FROM bot_sessions WHERE session_id = @id FOR SHARE",
            connection,
            transaction);
        command.Parameters.Add(Pg.Text("id", sessionId));
        return await command.ExecuteScalarAsync(cancellationToken) as string ?? throw new SessionNotFoundException(SessionKind.Bot, sessionId);
    }
}
