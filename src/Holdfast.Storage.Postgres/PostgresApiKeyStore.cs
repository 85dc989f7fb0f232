using Holdfast.Security;
using Npgsql;

namespace Holdfast.Storage.Postgres;

/// <summary><see cref="IApiKeyStore"/> over the PostgreSQL <c>users</c> and <c>api_keys</c> tables (hashes only, never a secret).</summary>
internal sealed class PostgresApiKeyStore : IApiKeyStore
{
    private const string KeyColumns = "k.id, k.user_name, u.is_admin, k.created_at, k.revoked_at, k.last_used_at, k.secret_hash";

    private readonly PostgresDatabase _database;

    public PostgresApiKeyStore(PostgresDatabase database)
    {
        _database = database;
    }

    public Task<ApiKey> AddKeyAsync(string id, string user, bool admin, string secretHash, DateTimeOffset createdAt, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    """
                    INSERT INTO users (name, is_admin, created_at) VALUES (@user, @admin, @now)
                    ON CONFLICT (name) DO UPDATE SET is_admin = users.is_admin OR excluded.is_admin;
                    INSERT INTO api_keys (id, user_name, secret_hash, created_at) VALUES (@id, @user, @hash, @now);
                    SELECT is_admin FROM users WHERE name = @user;
                    """,
                    connection,
                    transaction);
                command.Parameters.Add(Pg.Text("user", user));
                command.Parameters.Add(Pg.Bool("admin", admin));
                command.Parameters.Add(Pg.Time("now", createdAt));
                command.Parameters.Add(Pg.Text("id", id));
                command.Parameters.Add(Pg.Text("hash", secretHash));
                var isAdmin = (bool)(await command.ExecuteScalarAsync(ct))!;
                return new ApiKey(id, user, isAdmin, createdAt, null, null);
            },
            cancellationToken);

    public Task<IReadOnlyList<ApiKey>> ListKeysAsync(CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<ApiKey>>(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    $"SELECT {KeyColumns} FROM api_keys k JOIN users u ON u.name = k.user_name ORDER BY k.created_at, k.id", connection);
                var keys = new List<ApiKey>();
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    keys.Add(Map(reader).Key);
                }

                return keys;
            },
            cancellationToken);

    public Task<StoredApiKey?> FindKeyAsync(string id, CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand($"SELECT {KeyColumns} FROM api_keys k JOIN users u ON u.name = k.user_name WHERE k.id = @id", connection);
                command.Parameters.Add(Pg.Text("id", id));
                await using var reader = await command.ExecuteReaderAsync(ct);
                return await reader.ReadAsync(ct) ? Map(reader) : null;
            },
            cancellationToken);

    public Task<ApiKey?> RevokeKeyAsync(string id, DateTimeOffset at, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    $"""
                    UPDATE api_keys SET revoked_at = COALESCE(revoked_at, @at) WHERE id = @id;
                    SELECT {KeyColumns} FROM api_keys k JOIN users u ON u.name = k.user_name WHERE k.id = @id;
                    """,
                    connection,
                    transaction);
                command.Parameters.Add(Pg.Text("id", id));
                command.Parameters.Add(Pg.Time("at", at));
                await using var reader = await command.ExecuteReaderAsync(ct);
                return await reader.ReadAsync(ct) ? Map(reader).Key : null;
            },
            cancellationToken);

    public Task TouchKeyAsync(string id, DateTimeOffset at, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(
            async (connection, transaction, ct) =>
            {
                await using var command = new NpgsqlCommand("UPDATE api_keys SET last_used_at = @at WHERE id = @id", connection, transaction);
                command.Parameters.Add(Pg.Text("id", id));
                command.Parameters.Add(Pg.Time("at", at));
                return await command.ExecuteNonQueryAsync(ct);
            },
            cancellationToken);

    private static StoredApiKey Map(NpgsqlDataReader reader) => new(
        new ApiKey(reader.GetString(0), reader.GetString(1), reader.GetBoolean(2), reader.Time(3), reader.NullableTime(4), reader.NullableTime(5)),
        reader.GetString(6));
}
