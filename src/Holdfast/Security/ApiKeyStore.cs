using System.Security.Cryptography;
using System.Text;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Microsoft.Data.Sqlite;

namespace Holdfast.Security;

/// <summary>An API key as stored: its public id and its user, never its secret.</summary>
public sealed record ApiKey(string Id, string User, bool IsAdmin, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt, DateTimeOffset? LastUsedAt);

/// <summary>A key just created: <see cref="Secret"/> is the whole key, shown to the user once and never stored.</summary>
public sealed record NewApiKey(ApiKey Key, string Secret);

/// <summary>No API key has the given id.</summary>
public sealed class ApiKeyNotFoundException(string id) : HoldfastException($"No API key with id '{id}' exists.")
{
    public string Id { get; } = id;
}

/// <summary>Who a request is: a user name, whether that user is an admin, and the key it used (null on the Unix socket).</summary>
public sealed record Principal(string User, bool IsAdmin, string? KeyId)
{
    /// <summary>The user name of <see cref="LocalAdmin"/>, reserved: no API key can be created for it.</summary>
    public const string LocalUser = "local";

    /// <summary>The local admin: whoever can open the Unix socket (guarded by file permissions).</summary>
    public static Principal LocalAdmin { get; } = new(LocalUser, IsAdmin: true, KeyId: null);

    /// <summary>
    /// True for the reserved local identity (any letter case): sessions made over the socket or by the CLI belong to
    /// it, so a key acting as it would read and control all of them.
    /// </summary>
    public static bool IsLocalUser(string? user) => string.Equals(user, LocalUser, StringComparison.OrdinalIgnoreCase);
}

/// <summary>
/// Users and API keys in the SQLite database. A key looks like <c>hf_&lt;id&gt;_&lt;secret&gt;</c>: the id is public (listed,
/// used to revoke), the secret is 256 random bits; only SHA-256 of the whole key is stored, compared in fixed time.
/// </summary>
public sealed class ApiKeyStore(SqliteDatabase database, TimeProvider timeProvider)
{
    private const string KeyPrefix = "hf_";
    private static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Creates a key for <paramref name="user"/> (creating the user when new; <paramref name="admin"/> makes the user an
    /// admin, it never demotes one). Completes once the key is committed; the returned secret is not kept anywhere.
    /// Throws <see cref="InvalidSessionInputException"/> for an invalid user name and for the reserved local identity
    /// (<see cref="Principal.LocalUser"/>).
    /// </summary>
    public async Task<NewApiKey> CreateAsync(string user, bool admin = false, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(user, "user");
        if (Principal.IsLocalUser(user))
        {
            throw new InvalidSessionInputException(
                "user",
                $"'{user}' is reserved: it is who the Unix socket and the CLI act as, so a key for it would control every local session. Choose another user name (add --admin for a key that sees every session).");
        }

        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var secret = $"{KeyPrefix}{id}_{Base64Url(RandomNumberGenerator.GetBytes(32))}";
        var now = timeProvider.GetUtcNow();
        var isAdmin = await database.WriteAsync(
            async (connection, transaction) =>
            {
                await using (var upsert = connection.CreateCommand())
                {
                    upsert.Transaction = transaction;
                    upsert.CommandText = """
                        INSERT INTO users (name, is_admin, created_at) VALUES ($name, $admin, $now)
                        ON CONFLICT (name) DO UPDATE SET is_admin = MAX(is_admin, excluded.is_admin)
                        """;
                    upsert.Parameters.AddWithValue("$name", user);
                    upsert.Parameters.AddWithValue("$admin", admin ? 1 : 0);
                    upsert.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                    await upsert.ExecuteNonQueryAsync(cancellationToken);
                }

                await using (var insert = connection.CreateCommand())
                {
                    insert.Transaction = transaction;
                    insert.CommandText = """
                        INSERT INTO api_keys (id, user_name, secret_hash, created_at) VALUES ($id, $user, $hash, $now)
                        """;
                    insert.Parameters.AddWithValue("$id", id);
                    insert.Parameters.AddWithValue("$user", user);
                    insert.Parameters.AddWithValue("$hash", Hash(secret));
                    insert.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                    await insert.ExecuteNonQueryAsync(cancellationToken);
                }

                await using var read = connection.CreateCommand();
                read.Transaction = transaction;
                read.CommandText = "SELECT is_admin FROM users WHERE name = $name";
                read.Parameters.AddWithValue("$name", user);
                return Convert.ToInt64(await read.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) == 1;
            },
            cancellationToken);
        return new NewApiKey(new ApiKey(id, user, isAdmin, now, null, null), secret);
    }

    /// <summary>Every key (revoked ones too), oldest first.</summary>
    public Task<IReadOnlyList<ApiKey>> ListAsync(CancellationToken cancellationToken = default) =>
        database.ReadAsync<IReadOnlyList<ApiKey>>(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    SELECT k.id, k.user_name, u.is_admin, k.created_at, k.revoked_at, k.last_used_at
                    FROM api_keys k JOIN users u ON u.name = k.user_name
                    ORDER BY k.created_at, k.id
                    """;
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                var keys = new List<ApiKey>();
                while (await reader.ReadAsync(cancellationToken))
                {
                    keys.Add(ReadKey(reader));
                }

                return keys;
            },
            cancellationToken);

    /// <summary>
    /// Revokes the key with public id <paramref name="id"/>; revoking a revoked key changes nothing. Completes once
    /// committed; from then on the key authenticates no request. Throws <see cref="InvalidSessionInputException"/> for
    /// an unknown id.
    /// </summary>
    public async Task<ApiKey> RevokeAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(id, "id");
        var now = timeProvider.GetUtcNow();
        return await database.WriteAsync(
            async (connection, transaction) =>
            {
                await using (var update = connection.CreateCommand())
                {
                    update.Transaction = transaction;
                    update.CommandText = "UPDATE api_keys SET revoked_at = $now WHERE id = $id AND revoked_at IS NULL";
                    update.Parameters.AddWithValue("$id", id);
                    update.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                    await update.ExecuteNonQueryAsync(cancellationToken);
                }

                return await FindAsync(connection, transaction, id, cancellationToken)
                    ?? throw new ApiKeyNotFoundException(id);
            },
            cancellationToken);
    }

    /// <summary>
    /// Returns who <paramref name="presentedKey"/> belongs to, or null when it is malformed, unknown or revoked.
    /// Completes after one indexed read (and, at most once a minute per key, a write of its last-used time).
    /// </summary>
    public async Task<Principal?> AuthenticateAsync(string? presentedKey, CancellationToken cancellationToken = default)
    {
        if (presentedKey is null || presentedKey.Length > 200 || !presentedKey.StartsWith(KeyPrefix, StringComparison.Ordinal))
        {
            return null;
        }

        var separator = presentedKey.IndexOf('_', KeyPrefix.Length);
        if (separator < 0)
        {
            return null;
        }

        var id = presentedKey[KeyPrefix.Length..separator];
        if (!SessionIds.IsValid(id))
        {
            return null;
        }

        var row = await database.ReadAsync(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    SELECT k.id, k.user_name, u.is_admin, k.created_at, k.revoked_at, k.last_used_at, k.secret_hash
                    FROM api_keys k JOIN users u ON u.name = k.user_name
                    WHERE k.id = $id
                    """;
                command.Parameters.AddWithValue("$id", id);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                return await reader.ReadAsync(cancellationToken) ? (Key: ReadKey(reader), Hash: reader.GetString(6)) : default;
            },
            cancellationToken);
        if (row.Key is null || row.Key.RevokedAt is not null)
        {
            return null;
        }

        var expected = Convert.FromHexString(row.Hash);
        var actual = SHA256.HashData(Encoding.UTF8.GetBytes(presentedKey));
        if (!CryptographicOperations.FixedTimeEquals(expected, actual))
        {
            return null;
        }

        var now = timeProvider.GetUtcNow();
        if (row.Key.LastUsedAt is not { } lastUsed || now - lastUsed > LastUsedResolution)
        {
            await TouchAsync(id, now, cancellationToken);
        }

        if (!row.Key.IsAdmin && Principal.IsLocalUser(row.Key.User))
        {
            // A key made for the reserved local identity before it was reserved: it would see every session made over
            // the socket or by the CLI. Only an admin key (an explicit grant of everything) keeps working.
            return null;
        }

        return new Principal(row.Key.User, row.Key.IsAdmin, id);
    }

    private Task TouchAsync(string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(
            async (connection, transaction) =>
            {
                await using var update = connection.CreateCommand();
                update.Transaction = transaction;
                update.CommandText = "UPDATE api_keys SET last_used_at = $now WHERE id = $id";
                update.Parameters.AddWithValue("$id", id);
                update.Parameters.AddWithValue("$now", SqliteTime.Format(now));
                return await update.ExecuteNonQueryAsync(cancellationToken);
            },
            cancellationToken);

    private static async Task<ApiKey?> FindAsync(SqliteConnection connection, SqliteTransaction transaction, string id, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            SELECT k.id, k.user_name, u.is_admin, k.created_at, k.revoked_at, k.last_used_at
            FROM api_keys k JOIN users u ON u.name = k.user_name
            WHERE k.id = $id
            """;
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadKey(reader) : null;
    }

    private static ApiKey ReadKey(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        reader.GetInt64(2) == 1,
        SqliteTime.Parse(reader.GetString(3)),
        SqliteTime.ParseNullable(reader.IsDBNull(4) ? null : reader.GetString(4)),
        SqliteTime.ParseNullable(reader.IsDBNull(5) ? null : reader.GetString(5)));

    private static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static string Base64Url(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);
}
