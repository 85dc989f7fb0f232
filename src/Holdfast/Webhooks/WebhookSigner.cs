using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Holdfast.Webhooks;

/// <summary>
/// Standard Webhooks signing (standardwebhooks.com): the secret is <c>whsec_</c> + base64 of 24–64 random bytes; the
/// signature is <c>v1,</c> + base64(HMAC-SHA256(secret bytes, <c>{webhook-id}.{webhook-timestamp}.{body}</c>)), sent in
/// <c>webhook-signature</c> beside <c>webhook-id</c> and <c>webhook-timestamp</c> (Unix seconds).
/// </summary>
public static class WebhookSigner
{
    /// <summary>The secret prefix.</summary>
    public const string SecretPrefix = "whsec_";

    /// <summary>A new secret: <c>whsec_</c> + base64 of 32 random bytes.</summary>
    public static string NewSecret() => SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    /// <summary>True when <paramref name="secret"/> is <c>whsec_</c> + base64 of 24 to 64 bytes.</summary>
    public static bool IsValidSecret(string? secret) => TryKey(secret, out _);

    /// <summary>The <c>webhook-signature</c> value for one message.</summary>
    public static string Sign(string secret, string id, long timestamp, string body)
    {
        if (!TryKey(secret, out var key))
        {
            throw new ArgumentException("A webhook secret is whsec_ followed by base64 of 24 to 64 bytes.", nameof(secret));
        }

        var content = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{id}.{timestamp}.{body}"));
        return "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, content));
    }

    private static bool TryKey(string? secret, out byte[] key)
    {
        key = [];
        if (secret is null || !secret.StartsWith(SecretPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var buffer = new byte[64];
        if (!Convert.TryFromBase64String(secret[SecretPrefix.Length..], buffer, out var written) || written < 24)
        {
            return false;
        }

        key = buffer[..written];
        return true;
    }
}
