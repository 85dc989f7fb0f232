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

    /// <summary>Reconnect every active session on service start (default true).</summary>
    public bool RestoreOnStart { get; set; } = true;
}

/// <summary>
/// Refuses <see cref="BotOptions"/> this version cannot run on, at start-up and before any file is touched: a
/// <see cref="BotOptions.AuthStateKey"/> that is not base64 of 32 bytes.
/// </summary>
public sealed class BotOptionsValidator : IValidateOptions<BotOptions>
{
    public ValidateOptionsResult Validate(string? name, BotOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return BotAuthStateProtector.DescribeKeyProblem(options.AuthStateKey) is { } problem
            ? ValidateOptionsResult.Fail(problem)
            : ValidateOptionsResult.Success;
    }
}
