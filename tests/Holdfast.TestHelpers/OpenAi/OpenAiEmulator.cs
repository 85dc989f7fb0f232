using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Holdfast.Generation.Backends;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Holdfast.TestHelpers.OpenAi;

/// <summary>What the emulator does to the requests it receives from now on.</summary>
public enum EmulatorFault
{
    /// <summary>Streams the whole answer.</summary>
    None,

    /// <summary>Answers HTTP 500 with an OpenAI-style error body, before any token.</summary>
    Status500,

    /// <summary>Sends <see cref="EmulatorBehavior.FaultAfterTokens"/> tokens, then drops the connection (no [DONE]).</summary>
    CutStream,

    /// <summary>Sends <see cref="EmulatorBehavior.FaultAfterTokens"/> tokens, then goes silent (until the client gives up).</summary>
    Stall,
}

/// <summary>How the emulator answers; change it between requests with <see cref="OpenAiEmulator.Behavior"/>.</summary>
public sealed record EmulatorBehavior
{
    public EmulatorFault Fault { get; init; } = EmulatorFault.None;

    public int FaultAfterTokens { get; init; } = 5;

    /// <summary>The first this-many requests get HTTP 500 whatever <see cref="Fault"/> says (to test retry before the first token).</summary>
    public int FailFirstRequests { get; init; }

    /// <summary>Delay before the response headers and the first token.</summary>
    public TimeSpan FirstTokenDelay { get; init; }

    /// <summary>Delay between tokens (default 10 ms).</summary>
    public TimeSpan TokenDelay { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Tokens of an uninterrupted answer (the request's <c>max_tokens</c> wins when smaller). Default 40.</summary>
    public int MaxTokens { get; init; } = 40;

    /// <summary>Model ids <c>GET /v1/models</c> lists; null: that endpoint answers 404, as on servers without it.</summary>
    public IReadOnlyList<string>? Models { get; init; }
}

/// <summary>One request the emulator received: its body, and when it ended and how.</summary>
public sealed class EmulatorRequest
{
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _endedTimestamp;
    private int _tokensSent;

    internal EmulatorRequest(int index, string body, string? authorization)
    {
        Index = index;
        Body = body;
        Authorization = authorization;
        ReceivedTimestamp = Stopwatch.GetTimestamp();
        Json = JsonDocument.Parse(body).RootElement.Clone();
    }

    public int Index { get; }

    /// <summary>The raw JSON body.</summary>
    public string Body { get; }

    public JsonElement Json { get; }

    /// <summary>The Authorization header, if any.</summary>
    public string? Authorization { get; }

    public long ReceivedTimestamp { get; }

    /// <summary>Tokens written to the client so far.</summary>
    public int TokensSent => Volatile.Read(ref _tokensSent);

    /// <summary>True when the client closed the connection before the answer ended.</summary>
    public bool ClientDisconnected { get; private set; }

    /// <summary><see cref="Stopwatch"/> timestamp of the end (client disconnect or answer complete); 0 while open.</summary>
    public long EndedTimestamp => Interlocked.Read(ref _endedTimestamp);

    /// <summary>Completes when the request ended, either way.</summary>
    public Task Ended => _ended.Task;

    /// <summary>The messages of the request, as (role, content).</summary>
    public IReadOnlyList<(string Role, string Content)> Messages =>
        [.. Json.GetProperty("messages").EnumerateArray().Select(m => (m.GetProperty("role").GetString()!, m.GetProperty("content").GetString() ?? string.Empty))];

    internal void TokenSent() => Interlocked.Increment(ref _tokensSent);

    internal void End(bool clientDisconnected)
    {
        if (Interlocked.CompareExchange(ref _endedTimestamp, Stopwatch.GetTimestamp(), 0) == 0)
        {
            ClientDisconnected = clientDisconnected;
            _ended.TrySetResult();
        }
    }
}

/// <summary>
/// An OpenAI-compatible chat-completions server for tests: real HTTP on a loopback Kestrel, streaming
/// <c>chat.completion.chunk</c> Server-Sent Events. Its text is the scripted backend's (deterministic in the
/// messages and seed; a trailing assistant message is continued exactly), and faults can be injected: HTTP 500,
/// stream cut, stall, slow tokens; <see cref="RefusedBaseUrl"/> gives a URL that refuses connections. It records
/// every request body and when the client disconnected.
/// </summary>
public sealed class OpenAiEmulator : IAsyncDisposable
{
    private const string WarmupHeader = "X-Emulator-Warmup";
    private const string WarmupBody = """{"model":"warmup","messages":[{"role":"user","content":"hi"}],"stream":true}""";

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<EmulatorRequest> _requests = new();
    private int _count;

    private OpenAiEmulator(WebApplication app)
    {
        _app = app;
    }

    /// <summary>Base URL to configure as <c>Backends:&lt;name&gt;:BaseUrl</c>, e.g. <c>http://127.0.0.1:40123/v1</c>.</summary>
    public string BaseUrl { get; private set; } = string.Empty;

    /// <summary>Behaviour for requests that arrive from now on.</summary>
    public EmulatorBehavior Behavior { get; set; } = new();

    /// <summary>Requests received so far, in arrival order.</summary>
    public IReadOnlyList<EmulatorRequest> Requests => [.. _requests.OrderBy(r => r.Index)];

    /// <summary>Starts the emulator on a free loopback port; completes once it accepts connections.</summary>
    public static async Task<OpenAiEmulator> StartAsync(EmulatorBehavior? behavior = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var emulator = new OpenAiEmulator(app) { Behavior = behavior ?? new EmulatorBehavior() };
        app.MapPost("/v1/chat/completions", emulator.HandleAsync);
        app.MapGet("/v1/models", () => emulator.Behavior.Models is { } models
            ? Results.Json(new { @object = "list", data = models.Select(id => new { id, @object = "model", created = 0, owned_by = "emulator" }) })
            : Results.NotFound());
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        emulator.BaseUrl = address.TrimEnd('/') + "/v1";

        // Warm the pipeline up (JIT, first connection) so the first real request is answered at full speed.
        using (var http = new HttpClient())
        using (var warmup = new StringContent(WarmupBody, Encoding.UTF8, "application/json"))
        {
            warmup.Headers.Add(WarmupHeader, "1");
            using var response = await http.PostAsync(new Uri(emulator.BaseUrl + "/chat/completions"), warmup);
            await response.Content.ReadAsStringAsync();
        }

        return emulator;
    }

    /// <summary>The text the emulator answers (or answered) <paramref name="request"/> with, when no fault cuts it short.</summary>
    public string AnswerText(EmulatorRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return string.Concat(Plan(request.Json, Behavior.MaxTokens).Chunks);
    }

    /// <summary>A loopback URL where nothing listens (connections are refused).</summary>
    public static string RefusedBaseUrl()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}/v1");
    }

    /// <summary>Waits until request number <paramref name="index"/> (0-based) has arrived.</summary>
    public async Task<EmulatorRequest> WaitForRequestAsync(int index, TimeSpan? timeout = null)
    {
        EmulatorRequest? found = null;
        await Poll.UntilAsync(
            () =>
            {
                found = Requests.FirstOrDefault(r => r.Index == index);
                return Task.FromResult(found is not null);
            },
            $"emulator request #{index}",
            timeout,
            TimeSpan.FromMilliseconds(2));
        return found!;
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(timeout.Token);
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        if (context.Request.Headers.ContainsKey(WarmupHeader))
        {
            await AnswerAsync(context, new EmulatorRequest(-1, body, null), new EmulatorBehavior { TokenDelay = TimeSpan.Zero, MaxTokens = 3 });
            return;
        }

        var index = Interlocked.Increment(ref _count) - 1;
        var request = new EmulatorRequest(index, body, context.Request.Headers.Authorization.FirstOrDefault());
        _requests.Enqueue(request);
        var behavior = Behavior;
        using var registration = context.RequestAborted.Register(() => request.End(clientDisconnected: true));
        try
        {
            await AnswerAsync(context, request, behavior);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            request.End(clientDisconnected: true);
        }
        catch (IOException)
        {
            request.End(clientDisconnected: true);
        }
        finally
        {
            request.End(clientDisconnected: context.RequestAborted.IsCancellationRequested);
        }
    }

    private static async Task AnswerAsync(HttpContext context, EmulatorRequest request, EmulatorBehavior behavior)
    {
        var aborted = context.RequestAborted;
        var json = request.Json;
        if (behavior.FirstTokenDelay > TimeSpan.Zero)
        {
            await Task.Delay(behavior.FirstTokenDelay, aborted);
        }

        if (behavior.Fault == EmulatorFault.Status500 || request.Index < behavior.FailFirstRequests)
        {
            context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("""{"error":{"message":"emulated internal error","type":"server_error"}}""", aborted);
            return;
        }

        var plan = Plan(json, behavior.MaxTokens);
        var model = json.TryGetProperty("model", out var m) ? m.GetString() : "emulated";
        var stream = json.TryGetProperty("stream", out var st) && st.GetBoolean();
        var id = "chatcmpl-" + request.Index.ToString(CultureInfo.InvariantCulture);

        if (!stream)
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(JsonSerializer.Serialize(new
            {
                id,
                @object = "chat.completion",
                model,
                choices = new[] { new { index = 0, message = new { role = "assistant", content = string.Concat(plan.Chunks) }, finish_reason = plan.FinishReason } },
                usage = new { prompt_tokens = plan.InputTokens, completion_tokens = plan.Chunks.Count, total_tokens = plan.InputTokens + plan.Chunks.Count },
            }), aborted);
            return;
        }

        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        await context.Response.Body.FlushAsync(aborted);
        for (var i = 0; i < plan.Chunks.Count; i++)
        {
            if (i == behavior.FaultAfterTokens && behavior.Fault == EmulatorFault.CutStream)
            {
                // Let the client read what was sent, then reset the connection mid-answer.
                await Task.Delay(TimeSpan.FromMilliseconds(50), aborted);
                context.Abort();
                return;
            }

            if (i == behavior.FaultAfterTokens && behavior.Fault == EmulatorFault.Stall)
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, aborted);
            }

            if (i > 0 && behavior.TokenDelay > TimeSpan.Zero)
            {
                await Task.Delay(behavior.TokenDelay, aborted);
            }

            await WriteEventAsync(context, ChunkJson(id, model, new { content = plan.Chunks[i] }, null), aborted);
            request.TokenSent();
        }

        await WriteEventAsync(context, ChunkJson(id, model, new { }, plan.FinishReason), aborted);
        var includeUsage = json.TryGetProperty("stream_options", out var so) && so.TryGetProperty("include_usage", out var iu) && iu.GetBoolean();
        if (includeUsage)
        {
            await WriteEventAsync(context, JsonSerializer.Serialize(new
            {
                id,
                @object = "chat.completion.chunk",
                model,
                choices = Array.Empty<object>(),
                usage = new { prompt_tokens = plan.InputTokens, completion_tokens = plan.Chunks.Count, total_tokens = plan.InputTokens + plan.Chunks.Count },
            }), aborted);
        }

        await WriteEventAsync(context, "[DONE]", aborted);
    }

    private static string ChunkJson(string id, string? model, object delta, string? finishReason) => JsonSerializer.Serialize(new
    {
        id,
        @object = "chat.completion.chunk",
        created = 0,
        model,
        choices = new[] { new { index = 0, delta, finish_reason = finishReason } },
    });

    /// <summary>The scripted backend's plan for a chat-completions body: a trailing assistant message is continued.</summary>
    private static ScriptedPlan Plan(JsonElement json, int maxTokensConfigured)
    {
        var messages = json.GetProperty("messages").EnumerateArray()
            .Select(m => new ChatMessage(new ChatRole(m.GetProperty("role").GetString()!), m.GetProperty("content").GetString()))
            .ToList();
        var prefix = string.Empty;
        if (messages.Count > 0 && messages[^1].Role == ChatRole.Assistant)
        {
            prefix = messages[^1].Text;
            messages.RemoveAt(messages.Count - 1);
        }

        long? seed = json.TryGetProperty("seed", out var s) ? s.GetInt64() : null;
        int? maxTokens = json.TryGetProperty("max_tokens", out var mt) ? mt.GetInt32() : null;
        return ScriptedChatClient.Plan(messages, prefix, seed, maxTokens, maxTokensConfigured, null);
    }

    private static async Task WriteEventAsync(HttpContext context, string data, CancellationToken cancellationToken)
    {
        await context.Response.WriteAsync("data: " + data + "\n\n", cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken);
    }
}
