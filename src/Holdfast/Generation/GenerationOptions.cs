using Microsoft.Extensions.Options;

namespace Holdfast.Generation;

/// <summary>What happens at start-up to a session a dead process left <c>running</c>.</summary>
public enum GenerationRecoveryPolicy
{
    /// <summary>Queue it again; it continues from its last persisted output (default).</summary>
    Auto,

    /// <summary>Mark it <c>paused</c> with reason <c>interrupted</c>; a person resumes it.</summary>
    Manual,
}

/// <summary>The generation runner. Bound from the <c>Generation</c> configuration section.</summary>
public sealed class GenerationOptions
{
    public const string SectionName = "Generation";

    /// <summary>Longest value <see cref="FlushInterval"/> accepts.</summary>
    public static readonly TimeSpan MaxFlushInterval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Longest time a produced chunk waits before its group commit (default 25 ms). The design bound is 50 ms (a crash
    /// loses at most this much output, which the resumed run regenerates); up to 1 s is accepted for slow disks.
    /// </summary>
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromMilliseconds(25);

    /// <summary>A group commit happens as soon as this many chunks (over all sessions) are waiting (default 512).</summary>
    public int FlushMaxChunks { get; set; } = 512;

    /// <summary>
    /// Most chunks one group commit takes (default 4096): when the writer is behind, it takes everything waiting up to
    /// this, so a commit's fixed cost (the transaction, its fsync) is shared by more chunks and the durable log
    /// catches up instead of falling further behind. A bound on how long one commit holds the single writer.
    /// </summary>
    public int MaxChunksPerCommit { get; set; } = 4096;

    /// <summary><c>auto</c> (default) or <c>manual</c>; see <see cref="GenerationRecoveryPolicy"/>.</summary>
    public GenerationRecoveryPolicy RecoveryPolicy { get; set; } = GenerationRecoveryPolicy.Auto;

    /// <summary>
    /// Backend used when a request names none and its model is not <c>scripted</c>: a key under <c>Backends</c>
    /// (default <c>default</c>, an OpenAI-compatible server at a local Ollama's URL), or <c>scripted</c>.
    /// </summary>
    public string DefaultBackend { get; set; } = "default";

    /// <summary>How often the runner looks for queued sessions and control changes made by other processes (default 1 s).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Largest input accepted, in characters over all messages (default 1,000,000).</summary>
    public int MaxInputCharacters { get; set; } = 1_000_000;

    /// <summary>
    /// How long a failing group commit (database locked by another process past the busy timeout, disk full) is
    /// retried, with backoff, before it is given up (default 30 s). Its chunks are then regenerated: the runs whose
    /// endings it held are handed back to the runner, which writes them once the store answers again (a run whose
    /// output lost chunks is re-queued, or paused <c>interrupted</c> under the manual recovery policy).
    /// </summary>
    public TimeSpan CommitRetryLimit { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long the chunk rows of a finished (<c>completed</c> or <c>cancelled</c>) session are kept in its event log.
    /// Unset (default): until the session is deleted. A duration: that long after the session finished, its chunk
    /// rows are merged into one chunk event holding the whole output (the materialized output stays, and readers
    /// still get the full text), status events are kept.
    /// </summary>
    public TimeSpan? LogRetention { get; set; }
}

/// <summary>Start-up validation of <see cref="GenerationOptions"/> (each message names the setting and the allowed range).</summary>
internal sealed class GenerationOptionsValidator : IValidateOptions<GenerationOptions>
{
    public ValidateOptionsResult Validate(string? name, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (options.FlushInterval < TimeSpan.FromMilliseconds(1) || options.FlushInterval > GenerationOptions.MaxFlushInterval)
        {
            errors.Add($"Generation:FlushInterval must be between 1 ms and 1 s (the design bound is 50 ms; default 25 ms); it is {options.FlushInterval}.");
        }

        if (options.FlushMaxChunks is < 1 or > 100_000)
        {
            errors.Add($"Generation:FlushMaxChunks must be between 1 and 100000; it is {options.FlushMaxChunks}.");
        }

        if (options.MaxChunksPerCommit < options.FlushMaxChunks || options.MaxChunksPerCommit > 100_000)
        {
            errors.Add($"Generation:MaxChunksPerCommit must be between Generation:FlushMaxChunks ({options.FlushMaxChunks}) and 100000; it is {options.MaxChunksPerCommit}.");
        }

        if (options.PollInterval < TimeSpan.FromMilliseconds(10) || options.PollInterval > TimeSpan.FromMinutes(1))
        {
            errors.Add($"Generation:PollInterval must be between 10 ms and 1 min; it is {options.PollInterval}.");
        }

        if (options.MaxInputCharacters < 1)
        {
            errors.Add($"Generation:MaxInputCharacters must be at least 1; it is {options.MaxInputCharacters}.");
        }

        if (options.CommitRetryLimit < TimeSpan.Zero || options.CommitRetryLimit > TimeSpan.FromHours(1))
        {
            errors.Add($"Generation:CommitRetryLimit must be between 0 and 1 h; it is {options.CommitRetryLimit}.");
        }

        if (options.LogRetention is { } retention && retention <= TimeSpan.Zero)
        {
            errors.Add($"Generation:LogRetention must be a positive duration (e.g. 7.00:00:00), or unset to keep chunk rows until the session is deleted; it is {retention}.");
        }

        if (string.IsNullOrWhiteSpace(options.DefaultBackend))
        {
            errors.Add("Generation:DefaultBackend must name a backend (a key under Backends, 'default' or 'scripted').");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>How an OpenAI-compatible backend is asked to continue existing output.</summary>
public enum PrefillMode
{
    /// <summary>
    /// Send the output so far as a final assistant message with <c>continue_final_message: true</c> and
    /// <c>add_generation_prompt: false</c> (vLLM; Ollama and llama.cpp continue a final assistant message too). Default.
    /// </summary>
    ContinueFinalMessage,

    /// <summary>Send the output so far as a final assistant message, without extra fields.</summary>
    TrailingAssistant,

    /// <summary>
    /// The backend cannot prefill (OpenAI's own API): the declared fallback is used instead, the output so far as an
    /// assistant turn followed by an instruction to continue it exactly. Recorded as <c>fallback:instruction</c>.
    /// </summary>
    None,
}

/// <summary>One LLM backend, bound from <c>Backends:&lt;name&gt;</c> (e.g. <c>Backends:Default:BaseUrl</c>).</summary>
public sealed class GenerationBackendOptions
{
    public const string SectionName = "Backends";

    /// <summary>Default base URL: a local Ollama's OpenAI-compatible endpoint.</summary>
    public const string DefaultBaseUrl = "http://127.0.0.1:11434/v1";

    /// <summary><c>openai</c> (OpenAI-compatible HTTP, default) or <c>scripted</c>.</summary>
    public string Type { get; set; } = "openai";

    /// <summary>Base URL ending before <c>/chat/completions</c>, e.g. <c>https://api.openai.com/v1</c>.</summary>
    public string BaseUrl { get; set; } = DefaultBaseUrl;

    /// <summary>Bearer key, when the server wants one. Never logged.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Model used when a request's model is <c>default</c>.</summary>
    public string? Model { get; set; }

    /// <summary>
    /// Models this backend serves, besides those it lists at <c>GET {BaseUrl}/models</c>; a request for another model
    /// is refused (404 <c>model_not_found</c>) when the backend lists its models.
    /// </summary>
    public string[]? Models { get; set; }

    /// <summary>Time allowed to open the TCP connection (default 5 s).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest silence allowed while waiting for the response headers or the next streamed chunk (default 60 s).</summary>
    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Retries of a request that failed before its first token (refused, 5xx, 429), with exponential backoff (default 2).</summary>
    public int MaxRetries { get; set; } = 2;

    /// <summary>First backoff delay; doubled on every retry (default 500 ms).</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Sessions of this backend running at once; more wait <c>queued</c> (default 4).</summary>
    public int MaxConcurrency { get; set; } = 4;

    /// <summary>How to continue existing output; see <see cref="Generation.PrefillMode"/>.</summary>
    public PrefillMode Prefill { get; set; } = PrefillMode.ContinueFinalMessage;
}

/// <summary>The deterministic <c>scripted</c> backend (for tests and demos). Bound from the <c>Scripted</c> section.</summary>
public sealed class ScriptedBackendOptions
{
    public const string SectionName = "Scripted";

    /// <summary>Tokens produced per second (default 50); 0 means as fast as possible.</summary>
    public double TokensPerSecond { get; set; } = 50;

    /// <summary>Tokens per output (default 200); a request's own <c>max_tokens</c> wins when smaller.</summary>
    public int MaxTokens { get; set; } = 200;

    /// <summary>Scripted sessions running at once (default 1000).</summary>
    public int MaxConcurrency { get; set; } = 1000;
}

/// <summary>Start-up validation of <see cref="ScriptedBackendOptions"/>.</summary>
internal sealed class ScriptedBackendOptionsValidator : IValidateOptions<ScriptedBackendOptions>
{
    public ValidateOptionsResult Validate(string? name, ScriptedBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (double.IsNaN(options.TokensPerSecond) || double.IsInfinity(options.TokensPerSecond) || options.TokensPerSecond < 0)
        {
            errors.Add($"Scripted:TokensPerSecond must be 0 (as fast as possible) or a positive number; it is {options.TokensPerSecond}.");
        }

        if (options.MaxTokens is < 1 or > 10_000_000)
        {
            errors.Add($"Scripted:MaxTokens must be between 1 and 10000000; it is {options.MaxTokens}.");
        }

        if (options.MaxConcurrency < 1)
        {
            errors.Add($"Scripted:MaxConcurrency must be at least 1; it is {options.MaxConcurrency}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
