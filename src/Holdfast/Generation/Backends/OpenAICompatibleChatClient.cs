using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Holdfast.Sessions;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace Holdfast.Generation.Backends;

/// <summary>A backend failed (refused, HTTP error, stream cut, silence past the read timeout). The message says what to check or configure.</summary>
public sealed class GenerationBackendException : HoldfastException
{
    public GenerationBackendException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Streaming chat completions from any OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp server, LM Studio)
/// over <see cref="HttpClient"/> and Server-Sent Events. Connect and read timeouts; retry with exponential backoff
/// only before the first token (connection refused, 5xx, 429); a trailing assistant message is sent as a prefix to
/// continue (with <c>continue_final_message</c> when configured). Cancelling the token closes the HTTP stream at once.
/// </summary>
public sealed class OpenAICompatibleChatClient : IChatClient
{
    private readonly string _name;
    private readonly GenerationBackendOptions _options;
    private readonly HttpClient _http;
    private readonly Uri _endpoint;
    private static readonly HttpRequestOptionsKey<CancellationTokenSource> HeaderTimerKey = new("Holdfast.HeaderTimer");

    private readonly ResiliencePipeline<HttpResponseMessage> _retry;
    private readonly TimeProvider _time;
    private readonly ILogger? _logger;

    public OpenAICompatibleChatClient(string name, GenerationBackendOptions options, TimeProvider? timeProvider = null, ILogger<OpenAICompatibleChatClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _name = name;
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger;
        if (!Uri.TryCreate(options.BaseUrl.TrimEnd('/') + "/chat/completions", UriKind.Absolute, out var endpoint)
            || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new InvalidOperationException($"{ConfigKey("BaseUrl")} is '{options.BaseUrl}', which is not an http(s) URL.");
        }

        _endpoint = endpoint;
        _http = new HttpClient(new SocketsHttpHandler
        {
            // The connect timeout is ours (ConnectAsync), on the injected TimeProvider, so it can be told apart from
            // a server that accepts the connection but does not answer (ReadTimeout).
            ConnectCallback = ConnectAsync,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };

        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = _time };

        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = options.MaxRetries,
                Delay = options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome switch
                {
                    { Exception: HttpRequestException } => true,
                    { Exception: TimeoutException } => true,
                    { Result: { } response } => (int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests,
                    _ => false,
                }),
                OnRetry = args =>
                {
                    if (_logger is not null)
                    {
                        Log.GenerationBackendRetry(_logger, _name, args.AttemptNumber + 1, args.RetryDelay.TotalMilliseconds);
                    }

                    args.Outcome.Result?.Dispose();
                    return ValueTask.CompletedTask;
                },
            });
        }

        _retry = builder.Build();
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages,
        ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var body = BuildBody(messages, options);
        using var response = await SendAsync(body, cancellationToken);
        await using var stream = await OpenStreamAsync(response, cancellationToken);
        using var reader = new StreamReader(stream, Encoding.UTF8);

        // Silence between events is timed on the injected TimeProvider: CancelAfter on this source uses its timer.
        using var silence = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        using var read = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, silence.Token);
        var tokens = 0;
        var finished = false;
        while (true)
        {
            var update = await ReadUpdateAsync(reader, silence, read.Token, tokens, finished, cancellationToken);
            if (update is null)
            {
                yield break;
            }

            finished |= update.FinishReason is not null;

            if (!string.IsNullOrEmpty(update.Text))
            {
                tokens++;
            }

            yield return update;
        }
    }

    /// <summary>
    /// The model ids the server lists at <c>GET {BaseUrl}/models</c> (OpenAI's <c>{"data":[{"id":…}]}</c>). Completes
    /// with the list; with null when the server answers but lists none (no such endpoint, or another shape). Throws
    /// <see cref="GenerationBackendException"/> when the server cannot be reached within the connect timeout (at most 2 s).
    /// </summary>
    public async Task<IReadOnlyList<string>?> ListModelsAsync(CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_options.BaseUrl.TrimEnd('/') + "/models"));
        if (!string.IsNullOrEmpty(_options.ApiKey))
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", _options.ApiKey);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(Math.Min(2, Math.Max(0.1, _options.ConnectTimeout.TotalSeconds))), _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, linked.Token);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }

            using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(linked.Token));
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("data", out var data)
                || data.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            return [.. data.EnumerateArray()
                .Where(m => m.ValueKind == JsonValueKind.Object && m.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
                .Select(m => m.GetProperty("id").GetString()!)];
        }
        catch (JsonException)
        {
            return null;
        }
        catch (Exception ex) when (ex is HttpRequestException or TimeoutException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new GenerationBackendException($"backend '{_name}' at {_options.BaseUrl} does not answer ({ex.GetType().Name})", ex);
        }
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType?.IsInstanceOfType(this) == true ? this : null;

    public void Dispose() => _http.Dispose();

    private string ConfigKey(string setting) =>
        $"Backends:{(string.Equals(_name, GenerationBackends.Default, StringComparison.OrdinalIgnoreCase) ? "Default" : _name)}:{setting}";

    private byte[] BuildBody(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages.ToList();
        var model = options?.ModelId;
        if (string.IsNullOrWhiteSpace(model) || string.Equals(model, "default", StringComparison.OrdinalIgnoreCase))
        {
            model = _options.Model ?? throw new GenerationBackendException(
                $"No model was given for backend '{_name}'. Name one in the request, or set {ConfigKey("Model")} (for Ollama, e.g. llama3.2).");
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model", model);
            json.WriteStartArray("messages");
            foreach (var message in list)
            {
                json.WriteStartObject();
                json.WriteString("role", message.Role.Value);
                json.WriteString("content", message.Text);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteBoolean("stream", true);
            json.WriteStartObject("stream_options");
            json.WriteBoolean("include_usage", true);
            json.WriteEndObject();
            if (options?.Temperature is { } temperature)
            {
                json.WriteNumber("temperature", temperature);
            }

            if (options?.TopP is { } topP)
            {
                json.WriteNumber("top_p", topP);
            }

            if (options?.MaxOutputTokens is { } maxTokens)
            {
                json.WriteNumber("max_tokens", maxTokens);
            }

            if (options?.Seed is { } seed)
            {
                json.WriteNumber("seed", seed);
            }

            if (options?.StopSequences is { Count: > 0 } stop)
            {
                json.WriteStartArray("stop");
                foreach (var s in stop)
                {
                    json.WriteStringValue(s);
                }

                json.WriteEndArray();
            }

            if (list.Count > 0 && list[^1].Role == ChatRole.Assistant && _options.Prefill == PrefillMode.ContinueFinalMessage)
            {
                json.WriteBoolean("continue_final_message", true);
                json.WriteBoolean("add_generation_prompt", false);
            }

            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private async Task<HttpResponseMessage> SendAsync(byte[] body, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _retry.ExecuteAsync(
                async token =>
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new ByteArrayContent(body) };
                    request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                    request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
                    if (!string.IsNullOrEmpty(_options.ApiKey))
                    {
                        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.ApiKey);
                    }

                    // ReadTimeout until the response headers; ConnectAsync holds this clock while it opens a new connection.
                    using var headers = new CancellationTokenSource(_options.ReadTimeout, _time);
                    using var linked = CancellationTokenSource.CreateLinkedTokenSource(token, headers.Token);
                    request.Options.Set(HeaderTimerKey, headers);
                    try
                    {
                        return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
                    }
                    catch (OperationCanceledException ex) when (headers.IsCancellationRequested && !token.IsCancellationRequested)
                    {
                        throw new TimeoutException(
                            $"it accepted the connection but sent no response headers within {Seconds(_options.ReadTimeout)} s ({ConfigKey("ReadTimeout")})", ex);
                    }
                },
                cancellationToken);
        }
        catch (Exception ex) when (IsCancellation(ex, cancellationToken))
        {
            // Pause or cancel tore the request down; whatever the handler threw, it is a cancellation.
            throw new OperationCanceledException("The request was cancelled.", ex, cancellationToken);
        }
        catch (HttpRequestException ex) when (ex.InnerException is ConnectTimeoutException)
        {
            throw new GenerationBackendException(
                $"Could not connect to backend '{_name}' at {_options.BaseUrl}: no connection within {Seconds(_options.ConnectTimeout)} s " +
                $"({ConfigKey("ConnectTimeout")}). Check {ConfigKey("BaseUrl")} (is the server running and reachable from here?), " +
                $"or raise {ConfigKey("ConnectTimeout")}. The session keeps its output and can be resumed.",
                ex);
        }
        catch (HttpRequestException ex)
        {
            var reason = ex.InnerException is SocketException socket ? socket.Message : ex.Message;
            throw new GenerationBackendException(
                $"Could not reach backend '{_name}' at {_options.BaseUrl} ({reason}). Start an OpenAI-compatible server there " +
                $"(for example `ollama serve`), or set {ConfigKey("BaseUrl")} (and {ConfigKey("ApiKey")}, {ConfigKey("Model")}) to one that runs, " +
                "or use the scripted backend (Generation:DefaultBackend=scripted). The session keeps its output and can be resumed.",
                ex);
        }
        catch (TimeoutException ex)
        {
            throw new GenerationBackendException(
                $"Backend '{_name}' at {_options.BaseUrl} did not answer: {ex.Message}. The partial output is kept and the session can be resumed.", ex);
        }

        if (!response.IsSuccessStatusCode)
        {
            using (response)
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken);
                if (text.Length > 300)
                {
                    text = text[..300] + "…";
                }

                var hint = response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
                    ? $" Check {ConfigKey("ApiKey")}."
                    : response.StatusCode == HttpStatusCode.NotFound ? $" Check {ConfigKey("BaseUrl")} and the model name." : string.Empty;
                throw new GenerationBackendException(
                    $"Backend '{_name}' answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}: {text}.{hint} The session can be resumed.");
            }
        }

        return response;
    }

    private static async Task<Stream> OpenStreamAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadAsStreamAsync(cancellationToken);
        }
        catch (Exception ex) when (IsCancellation(ex, cancellationToken))
        {
            throw new OperationCanceledException("The request was cancelled.", ex, cancellationToken);
        }
    }

    /// <summary>
    /// Opens the TCP connection of a new pooled connection, within <see cref="GenerationBackendOptions.ConnectTimeout"/>
    /// on the injected <see cref="TimeProvider"/>. The request's header clock (ReadTimeout) is held meanwhile, so a
    /// stalled connect is reported as a connect timeout and a silent server as a read timeout.
    /// </summary>
    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        context.InitialRequestMessage.Options.TryGetValue(HeaderTimerKey, out var headerTimer);
        HoldTimer(headerTimer, Timeout.InfiniteTimeSpan);
        using var timeout = new CancellationTokenSource(_options.ConnectTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, linked.Token);
            HoldTimer(headerTimer, _options.ReadTimeout);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            HoldTimer(headerTimer, _options.ReadTimeout);
            throw new ConnectTimeoutException(ex);
        }
        catch
        {
            socket.Dispose();
            HoldTimer(headerTimer, _options.ReadTimeout);
            throw;
        }
    }

    private static void HoldTimer(CancellationTokenSource? timer, TimeSpan restartWith)
    {
        try
        {
            timer?.CancelAfter(restartWith);
        }
        catch (ObjectDisposedException)
        {
            // The request that opened this connection has already ended.
        }
    }

    /// <summary>
    /// True when <paramref name="cancellationToken"/> is cancelled and <paramref name="ex"/> is not already the
    /// <see cref="OperationCanceledException"/> for it: pause or cancel tore the request down, and whatever the handler
    /// threw (an IOException, an HttpRequestException, a cancellation of a linked token) is rethrown as a cancellation.
    /// </summary>
    private static bool IsCancellation(Exception ex, CancellationToken cancellationToken) =>
        cancellationToken.IsCancellationRequested && !(ex is OperationCanceledException oce && oce.CancellationToken == cancellationToken);

    private static string Seconds(TimeSpan value) => value.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);

    private async Task<ChatResponseUpdate?> ReadUpdateAsync(
        StreamReader reader, CancellationTokenSource silence, CancellationToken readToken, int tokensSoFar, bool finished, CancellationToken cancellationToken)
    {
        while (true)
        {
            string? line;
            silence.CancelAfter(_options.ReadTimeout);
            try
            {
                line = await reader.ReadLineAsync(readToken);
            }
            catch (Exception ex) when (IsCancellation(ex, cancellationToken))
            {
                // Pause or cancel closed the stream under the read: a cancellation, not a stream cut.
                throw new OperationCanceledException("The request was cancelled.", ex, cancellationToken);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new GenerationBackendException(
                    $"Backend '{_name}' sent nothing for {Seconds(_options.ReadTimeout)} s after {tokensSoFar} tokens ({ConfigKey("ReadTimeout")}); " +
                    "the stream was closed. The partial output is kept and the session can be resumed.",
                    ex);
            }
            catch (IOException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw StreamCut(tokensSoFar, ex);
            }
            catch (HttpRequestException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw StreamCut(tokensSoFar, ex);
            }

            if (line is null)
            {
                // A server that sent its finish reason and then closed without [DONE] has still finished.
                return finished ? null : throw StreamCut(tokensSoFar, null);
            }

            if (line.Length == 0 || line[0] == ':' || !line.StartsWith("data:", StringComparison.Ordinal))
            {
                continue;
            }

            var data = line.AsSpan(5).Trim();
            if (data.SequenceEqual("[DONE]"))
            {
                return null;
            }

            var update = Parse(data.ToString());
            if (update is not null)
            {
                return update;
            }
        }
    }

    private GenerationBackendException StreamCut(int tokensSoFar, Exception? inner) =>
        new($"The stream from backend '{_name}' ended after {tokensSoFar} tokens without finishing (connection closed). " +
            "The partial output is kept and the session can be resumed.", inner);

    private ChatResponseUpdate? Parse(string data)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(data);
        }
        catch (JsonException ex)
        {
            throw new GenerationBackendException($"Backend '{_name}' sent a stream event that is not JSON; is {ConfigKey("BaseUrl")} an OpenAI-compatible server?", ex);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.TryGetProperty("error", out var error))
            {
                var message = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) ? m.GetString() : error.ToString();
                throw new GenerationBackendException($"Backend '{_name}' reported an error mid-stream: {message}. The session can be resumed.");
            }

            var update = new ChatResponseUpdate { Role = ChatRole.Assistant };
            if (root.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
            {
                update.ResponseId = id.GetString();
            }

            var any = false;
            if (root.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0)
            {
                var choice = choices[0];
                if (choice.TryGetProperty("delta", out var delta) && delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
                {
                    var text = content.GetString();
                    if (!string.IsNullOrEmpty(text))
                    {
                        update.Contents.Add(new TextContent(text));
                        any = true;
                    }
                }

                if (choice.TryGetProperty("finish_reason", out var finish) && finish.ValueKind == JsonValueKind.String)
                {
                    update.FinishReason = finish.GetString() switch
                    {
                        "stop" => ChatFinishReason.Stop,
                        "length" => ChatFinishReason.Length,
                        "content_filter" => ChatFinishReason.ContentFilter,
                        "tool_calls" => ChatFinishReason.ToolCalls,
                        var other => new ChatFinishReason(other!),
                    };
                    any = true;
                }
            }

            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                update.Contents.Add(new UsageContent(new UsageDetails
                {
                    InputTokenCount = usage.TryGetProperty("prompt_tokens", out var p) && p.TryGetInt64(out var pt) ? pt : null,
                    OutputTokenCount = usage.TryGetProperty("completion_tokens", out var c) && c.TryGetInt64(out var ct) ? ct : null,
                }));
                any = true;
            }

            return any ? update : null;
        }
    }

    /// <summary>The TCP connection was not established within the connect timeout (wrapped in an <see cref="HttpRequestException"/> by the handler).</summary>
    private sealed class ConnectTimeoutException(Exception innerException)
        : TimeoutException("No connection within the connect timeout.", innerException);
}
