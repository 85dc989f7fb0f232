using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Holdfast.Client.Tests.Streaming;

/// <summary>
/// A real Kestrel on loopback that serves one generation's stream the way Holdfast does (id = seq, chunk events, a done
/// event), and misbehaves on purpose: it can drop the connection after a number of events, or stop mid-stream.
/// </summary>
internal sealed class SseTestServer : IAsyncDisposable
{
    public const string GenerationId = "gen-1";

    private readonly WebApplication _app;

    private SseTestServer(WebApplication app, SseScript script)
    {
        _app = app;
        Script = script;
    }

    public SseScript Script { get; }

    public Uri Address { get; private set; } = null!;

    public int Port => Address.Port;

    public static string ChunkText(long seq) => $"piece {seq.ToString(CultureInfo.InvariantCulture)}; ";

    public static async Task<SseTestServer> StartAsync(SseScript script, int port = 0, string? unixSocket = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(options =>
        {
            if (unixSocket is not null)
            {
                options.ListenUnixSocket(unixSocket);
            }
            else
            {
                options.Listen(IPAddress.Loopback, port);
            }
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        app.MapGet("/api/v1/generations/{id}/stream", (HttpContext context, string id) => ServeAsync(context, id, script, app.Lifetime.ApplicationStopping));
        app.MapGet("/api/v1/generations/{id}", (string id) => id == GenerationId
            ? Results.Text("""{"id":"gen-1","owner":"local","model":"scripted","backend":"scripted","status":"running","input":[],"last_seq":3,"version":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}""", "application/json")
            : Results.Problem(statusCode: 404, title: "Not Found", detail: $"No generation session '{id}' was found."));
        await app.StartAsync();
        var server = new SseTestServer(app, script);
        if (unixSocket is null)
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            server.Address = new Uri(address);
        }

        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static async Task ServeAsync(HttpContext context, string id, SseScript script, CancellationToken stopping)
    {
        if (id != GenerationId)
        {
            context.Response.StatusCode = 404;
            context.Response.ContentType = "application/problem+json";
            await context.Response.WriteAsync($$"""{"type":"about:blank","title":"Not Found","status":404,"detail":"No generation session '{{id}}' was found."}""", context.RequestAborted);
            return;
        }

        var connection = Interlocked.Increment(ref script.ConnectionCount);
        var lastEventId = context.Request.Headers["Last-Event-ID"].ToString();
        var afterText = context.Request.Query["after"].ToString();
        var after = long.TryParse(lastEventId, CultureInfo.InvariantCulture, out var fromHeader)
            ? fromHeader
            : long.TryParse(afterText, CultureInfo.InvariantCulture, out var fromQuery) ? fromQuery : 0;
        script.Requests.Enqueue((afterText, lastEventId.Length == 0 ? null : lastEventId));

        if (script.FailFirstConnectionsWith503 >= connection)
        {
            context.Response.StatusCode = 503;
            context.Response.ContentType = "application/problem+json";
            await context.Response.WriteAsync("""{"title":"Service Unavailable","status":503,"detail":"Starting up."}""", context.RequestAborted);
            return;
        }

        context.Response.ContentType = "text/event-stream";
        await context.Response.WriteAsync(": connected\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
        var sent = 0;
        for (var seq = after + 1; seq <= script.TotalChunks; seq++)
        {
            var data = JsonSerializer.Serialize(new { seq, text = ChunkText(seq) });
            await context.Response.WriteAsync($"id: {seq}\nevent: chunk\ndata: {data}\n\n", context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            sent++;
            if (script.DropAfterEvents.TryGetValue(connection, out var dropAfter) && sent >= dropAfter)
            {
                // Give the client a moment to read what was sent: an abort resets the connection, and a reset discards
                // data the peer has not read yet.
                await Task.Delay(150, context.RequestAborted);
                context.Abort();
                return;
            }

            if (script.HangAfterSeq is { } hang && seq >= hang && connection == 1)
            {
                // Keep the stream open until the server shuts down; then end it without 'done', like a restart.
                script.Hanging.TrySetResult();
                await Task.Delay(Timeout.Infinite, stopping).ContinueWith(_ => { }, TaskScheduler.Default);
                return;
            }
        }

        var doneSeq = script.TotalChunks + 1;
        await context.Response.WriteAsync($"id: {doneSeq}\nevent: done\ndata: {{\"status\":\"completed\"}}\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }
}

/// <summary>What the test server does, and what it saw.</summary>
internal sealed class SseScript
{
    public int TotalChunks { get; init; } = 20;

    /// <summary>Connection number (from 1) → abort the connection after sending this many chunks.</summary>
    public Dictionary<int, int> DropAfterEvents { get; init; } = [];

    /// <summary>On the first connection, stop sending after this seq and hold the stream open until shutdown.</summary>
    public long? HangAfterSeq { get; init; }

    /// <summary>The first N connections get a 503 problem.</summary>
    public int FailFirstConnectionsWith503 { get; init; }

    public TaskCompletionSource Hanging { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int ConnectionCount;

    public ConcurrentQueue<(string After, string? LastEventId)> Requests { get; } = new();
}
