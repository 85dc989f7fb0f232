using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Holdfast.Cli.Tests;

/// <summary>A minimal OpenAI-compatible server on loopback: streamed chat completions of a fixed answer.</summary>
internal sealed class OpenAiEmulator : IAsyncDisposable
{
    public static readonly string[] Words = ["Holdfasts ", "anchor ", "kelp ", "to ", "rock ", "so ", "storms ", "cannot ", "tear ", "it ", "away."];

    private readonly WebApplication _app;

    private OpenAiEmulator(WebApplication app, Uri baseUrl)
    {
        _app = app;
        BaseUrl = baseUrl;
    }

    public static string Answer => string.Concat(Words);

    /// <summary>Ends in <c>/v1</c>, like the base URL of any OpenAI-compatible server.</summary>
    public Uri BaseUrl { get; }

    public int Requests;

    public static async Task<OpenAiEmulator> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        OpenAiEmulator? self = null;
        app.MapPost("/v1/chat/completions", async (HttpContext context) =>
        {
            Interlocked.Increment(ref self!.Requests);
            using var request = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            var model = request.RootElement.TryGetProperty("model", out var m) ? m.GetString() : "model";
            context.Response.ContentType = "text/event-stream";
            foreach (var word in Words)
            {
                var chunk = JsonSerializer.Serialize(new
                {
                    id = "chatcmpl-1",
                    @object = "chat.completion.chunk",
                    created = 0,
                    model,
                    choices = new[] { new { index = 0, delta = new { content = word }, finish_reason = (string?)null } },
                });
                await context.Response.WriteAsync($"data: {chunk}\n\n", context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }

            var last = JsonSerializer.Serialize(new
            {
                id = "chatcmpl-1",
                @object = "chat.completion.chunk",
                created = 0,
                model,
                choices = new[] { new { index = 0, delta = new { content = string.Empty }, finish_reason = "stop" } },
                usage = new { prompt_tokens = 8, completion_tokens = Words.Length, total_tokens = 8 + Words.Length },
            });
            await context.Response.WriteAsync($"data: {last}\n\ndata: [DONE]\n\n", context.RequestAborted);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self = new OpenAiEmulator(app, new Uri(address.TrimEnd('/') + "/v1"));
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
