using System.Security.Cryptography;
using System.Text;
using Holdfast.Sessions;

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
/// Users and API keys over the <see cref="IApiKeyStore"/> port. A key looks like <c>hf_&lt;id&gt;_&lt;secret&gt;</c>: the id
/// is public (listed, used to revoke), the secret is 256 random bits; only SHA-256 of the whole key is stored,
/// compared in fixed time.
/// </summary>
public sealed class ApiKeys(IApiKeyStore store, TimeProvider timeProvider)
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
        var key = await store.AddKeyAsync(id, user, admin, Hash(secret), timeProvider.GetUtcNow(), cancellationToken);
        return new NewApiKey(key, secret);
    }

    /// <summary>Every key (revoked ones too), oldest first.</summary>
    public Task<IReadOnlyList<ApiKey>> ListAsync(CancellationToken cancellationToken = default) => store.ListKeysAsync(cancellationToken);

    /// <summary>
    /// Revokes the key with public id <paramref name="id"/>; revoking a revoked key changes nothing. Completes once
    /// committed; from then on the key authenticates no request. Throws <see cref="ApiKeyNotFoundException"/> for an
    /// unknown id.
    /// </summary>
    public async Task<ApiKey> RevokeAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(id, "id");
        return await store.RevokeKeyAsync(id, timeProvider.GetUtcNow(), cancellationToken) ?? throw new ApiKeyNotFoundException(id);
    }

    /// <summary>
    /// Returns who <paramref name="presentedKey"/> belongs to, or null when it is malformed, unknown or revoked.
    /// Completes after one indexed read (and, at most once a minute per key, a write of its last-used time).
    /// </summary>
    public async Task<Principal?> AuthenticateAsync(string? presentedKey, CancellationToken cancellationToken = default)
    {
        if (ParseKeyId(presentedKey) is not { } id)
        {
            return null;
        }

        var stored = await store.FindKeyAsync(id, cancellationToken);
        if (stored is null || stored.Key.RevokedAt is not null || !Matches(stored.SecretHash, presentedKey!))
        {
            return null;
        }

        var now = timeProvider.GetUtcNow();
        if (stored.Key.LastUsedAt is not { } lastUsed || now - lastUsed > LastUsedResolution)
        {
            await store.TouchKeyAsync(id, now, cancellationToken);
        }

        if (!stored.Key.IsAdmin && Principal.IsLocalUser(stored.Key.User))
        {
            // A key made for the reserved local identity before it was reserved: it would see every session made over
            // the socket or by the CLI. Only an admin key (an explicit grant of everything) keeps working.
            return null;
        }

        return new Principal(stored.Key.User, stored.Key.IsAdmin, id);
    }

    /// <summary>The public id inside a presented key (<c>hf_&lt;id&gt;_…</c>), or null when it is not shaped like one.</summary>
    internal static string? ParseKeyId(string? presentedKey)
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
        return SessionIds.IsValid(id) ? id : null;
    }

    /// <summary>SHA-256 of the whole key, lower-case hex: what the store keeps.</summary>
    internal static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static bool Matches(string storedHash, string presentedKey) =>
        CryptographicOperations.FixedTimeEquals(Convert.FromHexString(storedHash), SHA256.HashData(Encoding.UTF8.GetBytes(presentedKey)));

    private static string Base64Url(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);
}
