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

    /// <summary>Longest time a produced chunk waits before its group commit (default 25 ms, at most 50 ms recommended).</summary>
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromMilliseconds(25);

    /// <summary>A group commit happens as soon as this many chunks (over all sessions) are waiting (default 512).</summary>
    public int FlushMaxChunks { get; set; } = 512;

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

    internal void Validate()
    {
        if (FlushInterval <= TimeSpan.Zero || FlushInterval > TimeSpan.FromSeconds(5))
        {
            throw new InvalidOperationException($"Generation:FlushInterval must be between 1 ms and 5 s; it is {FlushInterval}.");
        }

        if (FlushMaxChunks < 1)
        {
            throw new InvalidOperationException($"Generation:FlushMaxChunks must be at least 1; it is {FlushMaxChunks}.");
        }

        if (PollInterval <= TimeSpan.Zero)
        {
            throw new InvalidOperationException($"Generation:PollInterval must be positive; it is {PollInterval}.");
        }
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
