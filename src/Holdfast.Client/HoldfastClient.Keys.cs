using Holdfast.Client.Models;

namespace Holdfast.Client;

public sealed partial class HoldfastClient
{
    /// <summary>Lists API keys (admins only), without their secrets. Completes with all of them.</summary>
    /// <param name="cancellationToken">Abandons the request.</param>
    public async Task<IReadOnlyList<ApiKeyInfo>> ListKeysAsync(CancellationToken cancellationToken = default) =>
        (await SendAsync<ItemPage<ApiKeyInfo>>(HttpMethod.Get, "api/v1/keys", cancellationToken: cancellationToken)).Items;

    /// <summary>
    /// Creates an API key for <paramref name="user"/> (admins only). Completes once its hash is stored; the returned
    /// <see cref="CreatedApiKey.Key"/> is the only time the secret is shown.
    /// </summary>
    /// <param name="user">The user the key acts as.</param>
    /// <param name="admin">Whether the key sees and controls every user's sessions.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<CreatedApiKey> CreateKeyAsync(string user, bool admin = false, CancellationToken cancellationToken = default) =>
        SendAsync<CreatedApiKey>(HttpMethod.Post, "api/v1/keys", new CreateApiKeyRequest(user, admin), cancellationToken: cancellationToken);

    /// <summary>Revokes an API key (admins only). Completes once requests with it are refused; returns the revoked key.</summary>
    /// <param name="keyId">The key's id (not its secret).</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<ApiKeyInfo> RevokeKeyAsync(string keyId, CancellationToken cancellationToken = default) =>
        SendAsync<ApiKeyInfo>(HttpMethod.Delete, $"api/v1/keys/{Escape(keyId)}", cancellationToken: cancellationToken);
}
