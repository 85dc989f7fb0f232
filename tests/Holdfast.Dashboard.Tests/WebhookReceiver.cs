using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Holdfast.Dashboard.Tests;

/// <summary>
/// A webhook receiver on a real Kestrel on 127.0.0.1 for the bot view's deliveries: <c>/ok</c> answers 204,
/// <c>/down</c> answers 503. Records the <c>webhook-id</c> of every request it got, per path.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<(string Path, string Id)> _received = new();

    private WebhookReceiver(WebApplication app) => _app = app;

    /// <summary>A URL that accepts every delivery (204).</summary>
    public string Accepting { get; private set; } = null!;

    /// <summary>A URL that refuses every delivery (503).</summary>
    public string Failing { get; private set; } = null!;

    /// <summary>(path, webhook-id) of every request, in arrival order.</summary>
    public IReadOnlyList<(string Path, string Id)> Received => [.. _received];

    /// <summary>Server settings that let the dispatcher reach this receiver quickly: loopback allowed, short waits, two attempts.</summary>
    public static Dictionary<string, string?> ServerSettings => new(StringComparer.Ordinal)
    {
        ["Webhooks:AllowPrivateTargets"] = "true",
        ["Webhooks:PollInterval"] = "00:00:00.100",
        ["Webhooks:RetryBaseDelay"] = "00:00:01",
        ["Webhooks:RetryMaxDelay"] = "00:00:01",
        ["Webhooks:MaxAttempts"] = "2",
    };

    public static async Task<WebhookReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.MapPost("/ok", (HttpRequest request) => receiver.Record("/ok", request, StatusCodes.Status204NoContent));
        app.MapPost("/down", (HttpRequest request) => receiver.Record("/down", request, StatusCodes.Status503ServiceUnavailable));
        await app.StartAsync();
        var root = app.Urls.Single();
        receiver.Accepting = root + "/ok";
        receiver.Failing = root + "/down";
        return receiver;
    }

    /// <summary>Subscribes <paramref name="url"/> to <paramref name="eventTypes"/> for the key's user; returns the subscription's id.</summary>
    public static async Task<string> SubscribeAsync(TestServer server, string key, string url, params string[] eventTypes)
    {
        using var api = server.Tcp(key);
        using var response = await api.PostAsJsonAsync("/api/v1/webhooks", new CreateWebhookRequest(url, eventTypes), HoldfastJson.Options);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<CreatedWebhook>(HoldfastJson.Options))!.Id;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private IResult Record(string path, HttpRequest request, int status)
    {
        _received.Enqueue((path, request.Headers["webhook-id"].ToString()));
        return Results.StatusCode(status);
    }
}
