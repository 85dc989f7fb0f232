using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Holdfast.Security;

namespace Holdfast.Server.Dashboard;

/// <summary>
/// One-time login links for people who reach the server over the Unix socket or the CLI and have no API key to type:
/// <c>holdfast dashboard</c> asks for one and prints it. A link carries a random token (256 bits) in the URL fragment,
/// which browsers never send to a server or put in a Referer; the page posts it once to sign in. A token works once,
/// for <see cref="Lifetime"/>, and only in this server process (only its hash is kept, in memory).
/// </summary>
internal sealed class DashboardLoginLinks(TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);

    private readonly ConcurrentDictionary<string, (Principal Principal, DateTimeOffset ExpiresAt)> _tokens = new(StringComparer.Ordinal);

    /// <summary>A new token that signs a browser in as <paramref name="principal"/>, and when it expires.</summary>
    public (string Token, DateTimeOffset ExpiresAt) Create(Principal principal)
    {
        var now = time.GetUtcNow();
        foreach (var (hash, entry) in _tokens)
        {
            if (entry.ExpiresAt <= now)
            {
                _tokens.TryRemove(hash, out _);
            }
        }

        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var expires = now + Lifetime;
        _tokens[Hash(token)] = (principal, expires);
        return (token, expires);
    }

    /// <summary>The principal of <paramref name="token"/>, once: null when unknown, used or expired.</summary>
    public Principal? Redeem(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 100)
        {
            return null;
        }

        return _tokens.TryRemove(Hash(token), out var entry) && entry.ExpiresAt > time.GetUtcNow() ? entry.Principal : null;
    }

    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
