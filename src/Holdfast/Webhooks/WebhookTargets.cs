using System.Net;
using System.Net.Sockets;
using Holdfast.Sessions;

namespace Holdfast.Webhooks;

/// <summary>
/// Where a webhook may be sent. Only <c>http</c>/<c>https</c> URLs without user info; unless private targets are
/// allowed, every address the host resolves to must be public: loopback, private (RFC 1918, unique local), link-local,
/// carrier-grade NAT, unspecified, multicast, broadcast and documentation ranges are refused, and so are NAT64, 6to4
/// and IPv4-compatible IPv6 addresses carrying one of those IPv4 addresses. The check runs before
/// any connection, on the addresses the connection will use (see <see cref="WebhookDispatcher"/>), so a name that
/// resolves to a private address later is refused too.
/// </summary>
public static class WebhookTargets
{
    /// <summary>The URL as a <see cref="Uri"/>, or <see cref="InvalidSessionInputException"/> saying what is wrong with it.</summary>
    public static Uri ParseUrl(string? url)
    {
        if (string.IsNullOrWhiteSpace(url) || url.Length > 2048 || !Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            throw new InvalidSessionInputException("url", "'url' must be an absolute http:// or https:// URL (at most 2048 characters).");
        }

        if (uri.Scheme is not ("http" or "https"))
        {
            throw new InvalidSessionInputException("url", "'url' must use http or https.");
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            throw new InvalidSessionInputException("url", "'url' must not contain a user name or password; the signature authenticates Holdfast.");
        }

        return uri;
    }

    /// <summary>True for an address a webhook may not reach unless private targets are allowed.</summary>
    public static bool IsPrivate(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) || address.Equals(IPAddress.Broadcast))
        {
            return true;
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return b[0] switch
            {
                0 or 10 or 127 => true,
                100 => b[1] is >= 64 and <= 127,              // 100.64.0.0/10 carrier-grade NAT
                169 => b[1] == 254,                           // link-local (cloud metadata)
                172 => b[1] is >= 16 and <= 31,
                192 => (b[1] == 168) || (b[1] == 0 && b[2] is 0 or 2), // 192.168/16, 192.0.0/24, 192.0.2/24
                198 => b[1] is 18 or 19 || (b[1] == 51 && b[2] == 100),
                203 => b[1] == 0 && b[2] == 113,
                >= 224 => true,                               // multicast and reserved
                _ => false,
            };
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var b = address.GetAddressBytes();
            if (EmbeddedIPv4(b) is { } embedded)
            {
                // NAT64 (64:ff9b::/96), 6to4 (2002::/16) and IPv4-compatible (::a.b.c.d) addresses reach the IPv4
                // address inside them: 64:ff9b::a9fe:a9fe is the cloud metadata service behind a NAT64 gateway.
                return IsPrivate(embedded);
            }

            return (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B && b[4] == 0x00 && b[5] == 0x01) // 64:ff9b:1::/48 local-use NAT64
                || (b[0] == 0x01 && b[1] == 0x00 && b.AsSpan(2, 6).IndexOfAnyExcept((byte)0) < 0) // 100::/64 discard
                || address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast
                || (b[0] & 0xFE) == 0xFC                      // fc00::/7 unique local
                || (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8) // 2001:db8::/32 documentation
                || address.IsIPv6Teredo;
        }

        return true;
    }

    /// <summary>The IPv4 address a NAT64 (64:ff9b::/96), 6to4 (2002::/16) or IPv4-compatible (::/96) address carries, or null.</summary>
    private static IPAddress? EmbeddedIPv4(byte[] b)
    {
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B && b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0)
        {
            return new IPAddress(b.AsSpan(12, 4));
        }

        if (b[0] == 0x20 && b[1] == 0x02)
        {
            return new IPAddress(b.AsSpan(2, 4));
        }

        // ::a.b.c.d, but not :: and ::1 (handled as unspecified and loopback before).
        return b.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0 && b.AsSpan(12, 4).IndexOfAnyExcept((byte)0) >= 0
            ? new IPAddress(b.AsSpan(12, 4))
            : null;
    }

    /// <summary>
    /// Why <paramref name="uri"/> is refused without a lookup (an IP literal that is private, or a <c>localhost</c>
    /// name), or null when only a lookup can tell.
    /// </summary>
    public static string? IsPrivateWithoutLookup(Uri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var host = uri.IdnHost;
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
        {
            return $"'{host}' is loopback; webhooks go only to public addresses unless Webhooks:AllowPrivateTargets is true.";
        }

        var literal = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        return IPAddress.TryParse(literal, out var ip) && IsPrivate(ip)
            ? $"{ip} is a loopback or private address; webhooks go only to public addresses unless Webhooks:AllowPrivateTargets is true."
            : null;
    }

    /// <summary>
    /// The addresses of <paramref name="host"/> it is allowed to connect to: an IP literal as it is (no lookup), a name
    /// resolved once. Throws <see cref="WebhookTargetRefusedException"/> when the host has no address or (unless
    /// <paramref name="allowPrivate"/>) any address is private: nothing is connected then.
    /// </summary>
    public static async Task<IPAddress[]> ResolveAllowedAsync(string host, bool allowPrivate, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        var literal = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        IPAddress[] addresses;
        if (IPAddress.TryParse(literal, out var ip))
        {
            addresses = [ip];
        }
        else
        {
            try
            {
                addresses = await Dns.GetHostAddressesAsync(host, cancellationToken);
            }
            catch (SocketException ex)
            {
                throw new WebhookTargetRefusedException($"'{host}' does not resolve ({ex.SocketErrorCode}).");
            }
        }

        if (addresses.Length == 0)
        {
            throw new WebhookTargetRefusedException($"'{host}' has no address.");
        }

        if (!allowPrivate && addresses.FirstOrDefault(IsPrivate) is { } refused)
        {
            throw new WebhookTargetRefusedException(
                $"'{host}' resolves to {refused}, a loopback or private address; webhooks go only to public addresses unless Webhooks:AllowPrivateTargets is true.");
        }

        return addresses;
    }
}

/// <summary>A webhook target that may not be reached (private address, no address). Nothing was sent.</summary>
public sealed class WebhookTargetRefusedException(string message) : Exception(message);
