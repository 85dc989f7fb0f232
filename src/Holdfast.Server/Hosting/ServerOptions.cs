namespace Holdfast.Server.Hosting;

/// <summary>How <c>holdfast serve</c> listens and guards itself. Bound from the <c>Server</c> configuration section.</summary>
public sealed class ServerOptions
{
    public const string SectionName = "Server";

    /// <summary>Default TCP address: loopback only.</summary>
    public const string DefaultUrl = "http://127.0.0.1:7400";

    /// <summary>
    /// TCP addresses, separated by ';' (<c>http://HOST:PORT</c>; port 0 picks a free port); empty for none.
    /// Requests over TCP need an API key.
    /// </summary>
    public string Urls { get; set; } = DefaultUrl;

    /// <summary>The TCP addresses one by one.</summary>
    public IReadOnlyList<string> UrlList() => Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Listen on the Unix domain socket too (the trusted local admin channel, mode 0600).</summary>
    public bool UnixSocket { get; set; } = true;

    /// <summary>Socket path; default <c>$HOLDFAST_DATA/holdfast.sock</c>.</summary>
    public string? SocketPath { get; set; }

    /// <summary>Largest accepted request body, in bytes (auth-state blobs included).</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Requests per second a key may make on average (token bucket refill); the Unix socket is not limited.</summary>
    public int RateLimitPerSecond { get; set; } = 50;

    /// <summary>Requests a key may make in a burst (token bucket size).</summary>
    public int RateLimitBurst { get; set; } = 200;

    /// <summary>Interval of the <c>: heartbeat</c> comment on an idle SSE stream.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Longest <c>?wait=</c> a control request may ask for.</summary>
    public TimeSpan MaxControlWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Public base URL used in pairing links (QR codes of web bots); default: the first TCP address.</summary>
    public string? PublicUrl { get; set; }
}
