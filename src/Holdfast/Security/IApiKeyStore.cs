namespace Holdfast.Security;

/// <summary>A stored key with the SHA-256 hash of its whole secret (lower-case hex).</summary>
public sealed record StoredApiKey(ApiKey Key, string SecretHash);

/// <summary>
/// Port: users and API keys (<c>users</c>, <c>api_keys</c>). Secrets are never given to it, only their hashes; key
/// generation, hashing and the fixed-time comparison are <see cref="ApiKeys"/>'s.
/// </summary>
public interface IApiKeyStore
{
    /// <summary>
    /// In one transaction: creates user <paramref name="user"/> when new (an existing user becomes admin when
    /// <paramref name="admin"/>; nobody is ever demoted) and stores the key. Returns the key with the user's admin flag.
    /// </summary>
    Task<ApiKey> AddKeyAsync(string id, string user, bool admin, string secretHash, DateTimeOffset createdAt, CancellationToken cancellationToken = default);

    /// <summary>Every key, revoked ones too, oldest first (created_at, then id).</summary>
    Task<IReadOnlyList<ApiKey>> ListKeysAsync(CancellationToken cancellationToken = default);

    /// <summary>The key with its hash, or null.</summary>
    Task<StoredApiKey?> FindKeyAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Marks the key revoked at <paramref name="at"/> (a revoked key keeps its first revocation time); null for an unknown id.</summary>
    Task<ApiKey?> RevokeKeyAsync(string id, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>Records that the key authenticated a request at <paramref name="at"/>.</summary>
    Task TouchKeyAsync(string id, DateTimeOffset at, CancellationToken cancellationToken = default);
}
