using Microsoft.Extensions.Options;

namespace Holdfast.Webhooks;

/// <summary>Webhook delivery settings (configuration section <c>Webhooks</c>), validated at start-up.</summary>
public sealed class WebhookOptions
{
    public const string SectionName = "Webhooks";

    /// <summary>Allow targets on loopback and private networks (refused by default: the server must not be a way into them).</summary>
    public bool AllowPrivateTargets { get; set; }

    /// <summary>Attempts per delivery before it is given up as <c>failed</c> (1–50, default 12: about 2 h with the default backoff).</summary>
    public int MaxAttempts { get; set; } = 12;

    /// <summary>Wait before the second attempt; it doubles per attempt up to <see cref="RetryMaxDelay"/>, each with jitter (half to all of it).</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest wait between attempts.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>How long one attempt may take (connect, send, answer) before it counts as failed.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the outbox is looked at when nothing in this process changed (events of other nodes, retries).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Deliveries claimed at once (and sent in parallel, at most 8 at a time).</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Off: no deliveries are sent by this node (events are still written to the outbox).</summary>
    public bool Deliver { get; set; } = true;
}

/// <summary>Refuses <see cref="WebhookOptions"/> out of range, naming the setting.</summary>
public sealed class WebhookOptionsValidator : IValidateOptions<WebhookOptions>
{
    public ValidateOptionsResult Validate(string? name, WebhookOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        const string section = WebhookOptions.SectionName;
        if (options.MaxAttempts is < 1 or > 50)
        {
            failures.Add($"{section}:{nameof(WebhookOptions.MaxAttempts)} must be from 1 to 50; it is {options.MaxAttempts}.");
        }

        if (options.RetryBaseDelay < TimeSpan.FromMilliseconds(10) || options.RetryBaseDelay > TimeSpan.FromHours(1))
        {
            failures.Add($"{section}:{nameof(WebhookOptions.RetryBaseDelay)} must be from 00:00:00.010 to 01:00:00; it is {options.RetryBaseDelay}.");
        }

        if (options.RetryMaxDelay < options.RetryBaseDelay || options.RetryMaxDelay > TimeSpan.FromDays(1))
        {
            failures.Add($"{section}:{nameof(WebhookOptions.RetryMaxDelay)} must be from RetryBaseDelay to 1.00:00:00; it is {options.RetryMaxDelay}.");
        }

        if (options.Timeout < TimeSpan.FromMilliseconds(100) || options.Timeout > TimeSpan.FromMinutes(5))
        {
            failures.Add($"{section}:{nameof(WebhookOptions.Timeout)} must be from 00:00:00.100 to 00:05:00; it is {options.Timeout}.");
        }

        if (options.PollInterval < TimeSpan.FromMilliseconds(10) || options.PollInterval > TimeSpan.FromMinutes(5))
        {
            failures.Add($"{section}:{nameof(WebhookOptions.PollInterval)} must be from 00:00:00.010 to 00:05:00; it is {options.PollInterval}.");
        }

        if (options.BatchSize is < 1 or > 1000)
        {
            failures.Add($"{section}:{nameof(WebhookOptions.BatchSize)} must be from 1 to 1000; it is {options.BatchSize}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>Webhook rules as pure functions.</summary>
public static class WebhookRules
{
    /// <summary>
    /// When attempt <paramref name="failedAttempts"/> + 1 is due after <paramref name="failedAttempts"/> failures:
    /// <c>min(base · 2^(n-1), max)</c>, jittered to between half and all of it by <paramref name="random"/> (0 ≤ r &lt; 1);
    /// null when <paramref name="maxAttempts"/> are used up (give up).
    /// </summary>
    public static TimeSpan? RetryDelay(int failedAttempts, int maxAttempts, TimeSpan baseDelay, TimeSpan maxDelay, double random)
    {
        if (failedAttempts >= maxAttempts)
        {
            return null;
        }

        var exponent = Math.Min(Math.Max(failedAttempts - 1, 0), 40);
        var ticks = Math.Min(baseDelay.Ticks * Math.Pow(2, exponent), maxDelay.Ticks);
        return TimeSpan.FromTicks((long)(ticks * (0.5 + (Math.Clamp(random, 0, 1) / 2))));
    }
}
