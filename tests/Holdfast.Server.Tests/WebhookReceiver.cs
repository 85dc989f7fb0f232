using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using StandardWebhooks;

namespace Holdfast.Server.Tests;

/// <summary>One webhook as the receiver got it.</summary>
public sealed record ReceivedWebhook(string Id, string Timestamp, string Signature, string Body, bool Verified, string? VerifyError)
{
    public string Type => JsonDocument.Parse(Body).RootElement.GetProperty("type").GetString()!;

    public JsonElement Data => JsonDocument.Parse(Body).RootElement.GetProperty("data");
}

/// <summary>
/// A webhook receiver on a real Kestrel on 127.0.0.1: every request is verified with the Standard Webhooks reference
/// library (<c>StandardWebhooks</c> on NuGet) against <see cref="Secret"/>, recorded, and answered as the test says:
/// 204, a status (<see cref="FailNext"/>), or held open until <see cref="Release"/> (<see cref="Hold"/>).
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedWebhook> _received = new();
    private readonly ConcurrentQueue<ReceivedWebhook> _answered = new();
    private TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _failNext;
    private int _inFlight;

    private WebhookReceiver(WebApplication app) => _app = app;

    /// <summary>The URL to subscribe (http://127.0.0.1:PORT/hook).</summary>
    public Uri Url { get; private set; } = null!;

    /// <summary>The subscription's <c>whsec_</c> secret, once known.</summary>
    public string? Secret { get; set; }

    /// <summary>Hold every request open until <see cref="Release"/> (a delivery in flight).</summary>
    public bool Hold { get; set; }

    /// <summary>Requests received (verified or not), in arrival order, also those that were held or failed.</summary>
    public IReadOnlyList<ReceivedWebhook> Received => [.. _received];

    /// <summary>Requests answered 204 (accepted).</summary>
    public IReadOnlyList<ReceivedWebhook> Accepted => [.. _answered];

    /// <summary>Requests being held now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Answer the next <paramref name="count"/> requests with 503.</summary>
    public void FailNext(int count) => Interlocked.Exchange(ref _failNext, count);

    /// <summary>Lets held requests go (they are answered 204 if their connection is still open).</summary>
    public void Release()
    {
        Hold = false;
        _release.TrySetResult();
        _release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public static async Task<WebhookReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.MapPost("/hook", (Delegate)receiver.HandleAsync);
        await app.StartAsync();
        receiver.Url = new Uri(app.Urls.Single() + "/hook");
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        Release();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task<IResult> HandleAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        var headers = context.Request.Headers;
        bool verified;
        string? error = null;
        try
        {
            new StandardWebhook(Secret ?? throw new InvalidOperationException("no secret yet")).Verify(body, headers);
            verified = true;
        }
        catch (Exception ex)
        {
            verified = false;
            error = ex.Message;
        }

        var webhook = new ReceivedWebhook(headers["webhook-id"].ToString(), headers["webhook-timestamp"].ToString(), headers["webhook-signature"].ToString(), body, verified, error);
        _received.Enqueue(webhook);
        if (Hold)
        {
            Interlocked.Increment(ref _inFlight);
            try
            {
                await _release.Task.WaitAsync(context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return Results.Empty;
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }

        if (Interlocked.Decrement(ref _failNext) >= 0)
        {
            return Results.StatusCode(503);
        }

        _answered.Enqueue(webhook);
        return Results.NoContent();
    }
}
