using System.Globalization;
using Holdfast.Bots;
using Holdfast.Sessions;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary>SQLite adapter of <see cref="IBotAuthKeyStore"/>: table <c>bot_auth_keys</c> (migration 0006).</summary>
public sealed class SqliteBotAuthKeyStore(SqliteDatabase database, TimeProvider time) : IBotAuthKeyStore
{
    public async Task<IReadOnlyDictionary<string, byte[]>> ReadAuthKeysAsync(
        string sessionId,
        string keyType,
        IReadOnlyCollection<string> keyIds,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keyIds);
        return await database.ReadAsync<IReadOnlyDictionary<string, byte[]>>(
            async connection =>
            {
                await RequireSessionAsync(connection, null, sessionId, cancellationToken);
                var found = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                await using var command = connection.CreateCommand();
                command.CommandText = "SELECT value FROM bot_auth_keys WHERE session_id = $id AND key_type = $type AND key_id = $key";
                command.Parameters.AddWithValue("$id", sessionId);
                command.Parameters.AddWithValue("$type", keyType);
                var key = command.Parameters.Add("$key", SqliteType.Text);
                foreach (var keyId in keyIds.Distinct(StringComparer.Ordinal))
                {
                    key.Value = keyId;
                    if (await command.ExecuteScalarAsync(cancellationToken) is byte[] value)
                    {
                        found[keyId] = value;
                    }
                }

                return found;
            },
            cancellationToken);
    }

    public async Task WriteAuthKeysAsync(string sessionId, IReadOnlyList<BotAuthKeyChange> changes, Actor actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(actor);
        try
        {
            await database.WriteAsync(
                async (connection, transaction) =>
                {
                    var status = await RequireSessionAsync(connection, transaction, sessionId, cancellationToken);
                    var now = time.GetUtcNow();
                    await using var upsert = connection.CreateCommand();
                    upsert.Transaction = transaction;
                    upsert.CommandText = """
                        INSERT INTO bot_auth_keys (session_id, key_type, key_id, value, updated_at) VALUES ($id, $type, $key, $value, $now)
                        ON CONFLICT (session_id, key_type, key_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                        """;
                    await using var delete = connection.CreateCommand();
                    delete.Transaction = transaction;
                    delete.CommandText = "DELETE FROM bot_auth_keys WHERE session_id = $id AND key_type = $type AND key_id = $key";
                    foreach (var command in new[] { upsert, delete })
                    {
                        command.Parameters.AddWithValue("$id", sessionId);
                        command.Parameters.Add("$type", SqliteType.Text);
                        command.Parameters.Add("$key", SqliteType.Text);
                    }

                    upsert.Parameters.Add("$value", SqliteType.Blob);
                    upsert.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                    int stored = 0, deleted = 0;
                    foreach (var change in changes)
                    {
                        var command = change.Value is null ? delete : upsert;
                        command.Parameters["$type"].Value = change.KeyType;
                        command.Parameters["$key"].Value = change.KeyId;
                        if (change.Value is { } value)
                        {
                            command.Parameters["$value"].Value = value;
                            stored++;
                        }
                        else
                        {
                            deleted++;
                        }

                        await command.ExecuteNonQueryAsync(cancellationToken);
                    }

                    // The audit event names counts and types only, never a key's value.
                    var types = string.Join(", ", changes.Select(c => c.KeyType).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
                    await SqliteAudit.AppendAsync(
                        connection, transaction, SessionKind.Bot, sessionId, actor, "bot.auth_keys", status, status, now,
                        string.Create(CultureInfo.InvariantCulture, $"{stored} keys stored, {deleted} deleted ({types}; encrypted)"),
                        cancellationToken);
                    return 0;
                },
                cancellationToken);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is not (5 or 6))
        {
            throw new StoreUnavailableException($"The bot auth keys were not stored: {ex.Message.TrimEnd('.')}; nothing was changed.", ex);
        }
    }

    private static async Task<string> RequireSessionAsync(SqliteConnection connection, SqliteTransaction? transaction, string sessionId, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT status FROM bot_sessions WHERE session_id = $id";
        command.Parameters.AddWithValue("$id", sessionId);
        return await command.ExecuteScalarAsync(cancellationToken) as string ?? throw new SessionNotFoundException(SessionKind.Bot, sessionId);
    }
}
