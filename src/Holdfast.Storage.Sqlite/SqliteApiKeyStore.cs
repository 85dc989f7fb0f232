using System.Globalization;
using Holdfast.Security;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary><see cref="IApiKeyStore"/> over the <c>users</c> and <c>api_keys</c> tables.</summary>
internal sealed class SqliteApiKeyStore(SqliteDatabase database) : IApiKeyStore
{
    private const string KeyColumns = "k.id, k.user_name, u.is_admin, k.created_at, k.revoked_at, k.last_used_at";

    public Task<ApiKey> AddKeyAsync(string id, string user, bool admin, string secretHash, DateTimeOffset createdAt, CancellationToken cancellationToken = default) =>
        database.WriteAsync(
            async (connection, transaction) =>
            {
                await using (var upsert = Command(connection, transaction, """
                    INSERT INTO users (name, is_admin, created_at) VALUES ($name, $admin, $now)
                    ON CONFLICT (name) DO UPDATE SET is_admin = MAX(is_admin, excluded.is_admin)
                    """))
                {
                    upsert.Parameters.AddWithValue("$name", user);
                    upsert.Parameters.AddWithValue("$admin", admin ? 1 : 0);
                    upsert.Parameters.AddWithValue("$now", SqliteTime.Format(createdAt));
                    await upsert.ExecuteNonQueryAsync(cancellationToken);
                }

                await using (var insert = Command(connection, transaction, "INSERT INTO api_keys (id, user_name, secret_hash, created_at) VALUES ($id, $user, $hash, $now)"))
                {
                    insert.Parameters.AddWithValue("$id", id);
                    insert.Parameters.AddWithValue("$user", user);
                    insert.Parameters.AddWithValue("$hash", secretHash);
                    insert.Parameters.AddWithValue("$now", SqliteTime.Format(createdAt));
                    await insert.ExecuteNonQueryAsync(cancellationToken);
                }

                return (await FindAsync(connection, transaction, id, cancellationToken))!.Key;
            },
            cancellationToken);

    public Task<IReadOnlyList<ApiKey>> ListKeysAsync(CancellationToken cancellationToken = default) =>
        database.ReadAsync<IReadOnlyList<ApiKey>>(
            async connection =>
            {
                await using var command = Command(connection, null, $"SELECT {KeyColumns} FROM api_keys k JOIN users u ON u.name = k.user_name ORDER BY k.created_at, k.id");
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                var keys = new List<ApiKey>();
                while (await reader.ReadAsync(cancellationToken))
                {
                    keys.Add(ReadKey(reader));
                }

                return keys;
            },
            cancellationToken);

    public Task<StoredApiKey?> FindKeyAsync(string id, CancellationToken cancellationToken = default) =>
        database.ReadAsync(connection => FindAsync(connection, null, id, cancellationToken), cancellationToken);

    public Task<ApiKey?> RevokeKeyAsync(string id, DateTimeOffset at, CancellationToken cancellationToken = default) =>
        database.WriteAsync(
            async (connection, transaction) =>
            {
                await using (var update = Command(connection, transaction, "UPDATE api_keys SET revoked_at = $now WHERE id = $id AND revoked_at IS NULL"))
                {
                    update.Parameters.AddWithValue("$id", id);
                    update.Parameters.AddWithValue("$now", SqliteTime.Format(at));
                    await update.ExecuteNonQueryAsync(cancellationToken);
                }

                return (await FindAsync(connection, transaction, id, cancellationToken))?.Key;
            },
            cancellationToken);

    public Task TouchKeyAsync(string id, DateTimeOffset at, CancellationToken cancellationToken = default) =>
        database.WriteAsync(
            async (connection, transaction) =>
            {
                await using var update = Command(connection, transaction, "UPDATE api_keys SET last_used_at = $now WHERE id = $id");
                update.Parameters.AddWithValue("$id", id);
                update.Parameters.AddWithValue("$now", SqliteTime.Format(at));
                return await update.ExecuteNonQueryAsync(cancellationToken);
            },
            cancellationToken);

    private static async Task<StoredApiKey?> FindAsync(SqliteConnection connection, SqliteTransaction? transaction, string id, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, $"SELECT {KeyColumns}, k.secret_hash FROM api_keys k JOIN users u ON u.name = k.user_name WHERE k.id = $id");
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? new StoredApiKey(ReadKey(reader), reader.GetString(6)) : null;
    }

    private static ApiKey ReadKey(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        Convert.ToInt64(reader.GetValue(2), CultureInfo.InvariantCulture) == 1,
        SqliteTime.Parse(reader.GetString(3)),
        SqliteTime.ParseNullable(reader.IsDBNull(4) ? null : reader.GetString(4)),
        SqliteTime.ParseNullable(reader.IsDBNull(5) ? null : reader.GetString(5)));

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }
}
