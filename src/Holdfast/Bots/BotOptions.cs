using Microsoft.Extensions.Options;

namespace Holdfast.Bots;

/// <summary>Bot settings, bound from the <c>Bots</c> configuration section.</summary>
public sealed class BotOptions
{
    public const string SectionName = "Bots";

    /// <summary>
    /// Key that encrypts bot login state at rest (AES-256-GCM): base64 of 32 bytes. When absent, a key file
    /// (<see cref="AuthStateKeyFile"/>, mode 0600) in the data directory is used, generated on first use.
    /// </summary>
    public string? AuthStateKey { get; set; }

    /// <summary>Key file name inside the data directory (or an absolute path), used when <see cref="AuthStateKey"/> is absent.</summary>
    public string AuthStateKeyFile { get; set; } = "bot-auth-state.key";

    /// <summary>Base URL that browsers reach the service on; the <c>web</c> connector's QR codes link to <c>{PublicBaseUrl}/pair/{session_id}?token=…</c>.</summary>
    public string PublicBaseUrl { get; set; } = "http://127.0.0.1:7400";

    /// <summary>
    /// How long a stored QR code is valid (default 2 min; 1 s to 1 h). A QR stored before the service started counts
    /// as expired too. The <c>web</c> connector renews its QR after half of it while unpaired.
    /// </summary>
    public TimeSpan QrLifetime { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Reconnect every active session on service start (default true).</summary>
    public bool RestoreOnStart { get; set; } = true;

    /// <summary>Sessions reconnected at once on start (1 to 256, default 4), so a restart does not reconnect every bot at once.</summary>
    public int RestoreConcurrency { get; set; } = 4;

    /// <summary>Longest random wait before each reconnect on start (default 250 ms; zero turns jitter off; at most 1 min).</summary>
    public TimeSpan RestoreJitter { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Reconnect attempts per session on start before it is left for the next start or a manual start (1 to 20, default 3).</summary>
    public int RestoreAttempts { get; set; } = 3;

    /// <summary>Wait before the second attempt; it doubles for each further one, up to <see cref="RestoreMaxBackoff"/> (default 1 s).</summary>
    public TimeSpan RestoreBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between two attempts of one session (default 30 s, at most 10 min).</summary>
    public TimeSpan RestoreMaxBackoff { get; set; } = TimeSpan.FromSeconds(30);
}
