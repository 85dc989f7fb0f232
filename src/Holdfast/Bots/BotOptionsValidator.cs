using Microsoft.Extensions.Options;

namespace Holdfast.Bots;

/// <summary>
/// Refuses <see cref="BotOptions"/> this version cannot run on, at start-up and before any file is touched: a
/// <see cref="BotOptions.AuthStateKey"/> that is not base64 of 32 bytes, and QR and restore settings out of range
/// (each failure names the setting and its range).
/// Registered with <c>ValidateOnStart</c> by <c>AddHoldfastBots</c>.
/// </summary>
public sealed class BotOptionsValidator : IValidateOptions<BotOptions>
{
    public ValidateOptionsResult Validate(string? name, BotOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        var section = BotOptions.SectionName;
        if (BotAuthStateProtector.DescribeKeyProblem(options.AuthStateKey) is { } problem)
        {
            failures.Add(problem);
        }

        if (options.QrLifetime < TimeSpan.FromSeconds(1) || options.QrLifetime > TimeSpan.FromHours(1))
        {
            failures.Add($"{section}:{nameof(BotOptions.QrLifetime)} must be from 00:00:01 to 01:00:00; it is {options.QrLifetime}.");
        }

        if (options.RestoreConcurrency is < 1 or > 256)
        {
            failures.Add($"{section}:{nameof(BotOptions.RestoreConcurrency)} must be from 1 to 256; it is {options.RestoreConcurrency}.");
        }

        if (options.RestoreAttempts is < 1 or > 20)
        {
            failures.Add($"{section}:{nameof(BotOptions.RestoreAttempts)} must be from 1 to 20; it is {options.RestoreAttempts}.");
        }

        if (options.RestoreJitter < TimeSpan.Zero || options.RestoreJitter > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{section}:{nameof(BotOptions.RestoreJitter)} must be from 00:00:00 to 00:01:00; it is {options.RestoreJitter}.");
        }

        if (options.RestoreBackoff < TimeSpan.Zero || options.RestoreBackoff > options.RestoreMaxBackoff)
        {
            failures.Add($"{section}:{nameof(BotOptions.RestoreBackoff)} must be from 00:00:00 to {section}:{nameof(BotOptions.RestoreMaxBackoff)}; it is {options.RestoreBackoff}.");
        }

        if (options.RestoreMaxBackoff < TimeSpan.Zero || options.RestoreMaxBackoff > TimeSpan.FromMinutes(10))
        {
            failures.Add($"{section}:{nameof(BotOptions.RestoreMaxBackoff)} must be from 00:00:00 to 00:10:00; it is {options.RestoreMaxBackoff}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
