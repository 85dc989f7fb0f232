using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Holdfast.Sessions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Holdfast.Webhooks;

/// <summary>
/// Sends the outbox: claims due deliveries under a lease, posts each one signed (Standard Webhooks headers), and
/// records the attempt: delivered on 2xx, else due again after an exponential backoff with jitter, or given up after
/// <see cref="WebhookOptions.MaxAttempts"/>. It looks at the outbox every <see cref="WebhookOptions.PollInterval"/>
/// (one cheap read when nothing is due: no write transaction, so the store's single writer is not disturbed), and
/// at once again after a full batch. A delivery claimed by a node
/// that died is due again when its lease ends, with the same id: at least once. Connections go only to the addresses
/// <see cref="WebhookTargets.ResolveAllowedAsync"/> allows, checked in the connect callback before the socket opens;
/// no proxy, no redirects.
/// </summary>
public sealed class WebhookDispatcher : BackgroundService
{
    private const int MaxParallel = 8;
    private readonly IWebhookStore _store;
    private readonly WebhookSubscriptions _subscriptions;
    private readonly WebhookOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly SessionChanges? _changes;

    /// <summary>A dispatcher over <paramref name="store"/>; <paramref name="changes"/>, when given, is told of every recorded attempt (<see cref="SessionChange.WebhookDeliveriesOnly"/>), for live views.</summary>
    public WebhookDispatcher(
        IWebhookStore store,
        WebhookSubscriptions subscriptions,
        IOptions<WebhookOptions> options,
        TimeProvider time,
        ILogger<WebhookDispatcher>? logger = null,
        SessionChanges? changes = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _changes = changes;
        _subscriptions = subscriptions;
        _options = options.Value;
        _time = time;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        var allowPrivate = _options.AllowPrivateTargets;
#pragma warning disable CA2000 // The handler is owned by the client (disposeHandler: true).
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
            ConnectTimeout = _options.Timeout,
            ConnectCallback = (context, cancellationToken) => ConnectAsync(context.DnsEndPoint, allowPrivate, cancellationToken),
        };
#pragma warning restore CA2000
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("Holdfast-Webhooks/1");
    }

    /// <summary>Wakes the loop now (something was written to the outbox).</summary>
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already awake.
            }
        }
    }

    public override void Dispose()
    {
        _http.Dispose();
        _wake.Dispose();
        base.Dispose();
        GC.SuppressFinalize(this);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Deliver)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            var sent = 0;
            try
            {
                sent = await RunOnceAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.WebhookLoopFailed(_logger, ex);
            }

            if (sent >= _options.BatchSize)
            {
                continue;
            }

            try
            {
                await _wake.WaitAsync(_options.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Claims and sends one batch of due deliveries; returns how many were claimed. Completes when every attempt is recorded.</summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken = default)
    {
        var lease = _options.Timeout + TimeSpan.FromSeconds(5);
        var due = await _store.ClaimDueAsync(_options.BatchSize, lease, cancellationToken);
        if (due.Count == 0)
        {
            return 0;
        }

        await Parallel.ForEachAsync(
            due,
            new ParallelOptions { MaxDegreeOfParallelism = MaxParallel, CancellationToken = cancellationToken },
            async (dispatch, token) =>
            {
                await _store.RecordAttemptAsync(await SendAsync(dispatch, token), token);
                NotifyRecorded(dispatch.Delivery);
            });
        return due.Count;
    }

    private void NotifyRecorded(WebhookDelivery delivery)
    {
        if (_changes is { HasObservers: true } && delivery.SessionKind is "bot" or "generation")
        {
            _changes.Notify(new SessionChange(SessionKindNames.Parse(delivery.SessionKind), delivery.SessionId, WebhookDeliveriesOnly: true));
        }
    }

    private async Task<WebhookAttempt> SendAsync(WebhookDispatch dispatch, CancellationToken cancellationToken)
    {
        var delivery = dispatch.Delivery;
        var failed = delivery.Attempts + 1;
        string secret;
        try
        {
            secret = _subscriptions.UnprotectSecret(delivery.SubscriptionId, dispatch.ProtectedSecret);
        }
        catch (StoreUnavailableException ex)
        {
            return new WebhookAttempt(delivery.Id, false, null, "secret unreadable: " + ex.Message, null);
        }

        var timestamp = _time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, dispatch.Url)
        {
            Content = new StringContent(dispatch.Payload, Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("webhook-id", delivery.Id);
        request.Headers.Add("webhook-timestamp", timestamp.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", WebhookSigner.Sign(secret, delivery.Id, timestamp, dispatch.Payload));
        int? status = null;
        string? error;
        using var attemptTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attemptTimeout.CancelAfter(_options.Timeout);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, attemptTimeout.Token);
            status = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                Log.WebhookDelivered(_logger, delivery.Id, delivery.EventType, status.Value);
                return new WebhookAttempt(delivery.Id, true, status, null, null);
            }

            error = $"HTTP {status}";
        }
        catch (HttpRequestException ex) when (Refusal(ex) is { } refused)
        {
            // Not a passing fault: the target is not allowed. Given up at once; nothing was sent.
            Log.WebhookRefused(_logger, delivery.Id, refused.Message);
            return new WebhookAttempt(delivery.Id, false, null, "refused: " + refused.Message, null);
        }
        catch (HttpRequestException ex)
        {
            error = Describe(ex);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = $"timed out after {_options.Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s";
        }

        var delay = WebhookRules.RetryDelay(failed, _options.MaxAttempts, _options.RetryBaseDelay, _options.RetryMaxDelay, Random.Shared.NextDouble());
        Log.WebhookAttemptFailed(_logger, delivery.Id, delivery.EventType, failed, error);
        return new WebhookAttempt(delivery.Id, false, status, error, delay is { } d ? _time.GetUtcNow() + d : null);
    }

    private static WebhookTargetRefusedException? Refusal(Exception ex)
    {
        for (var inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is WebhookTargetRefusedException refused)
            {
                return refused;
            }
        }

        return null;
    }

    private static string Describe(HttpRequestException ex)
    {
        var message = ex.InnerException is SocketException socket ? $"{ex.Message} ({socket.SocketErrorCode})" : ex.Message;
        return message.Length <= 300 ? message : message[..300];
    }

    /// <summary>Resolves and checks the target, then connects to the first allowed address that answers.</summary>
    private static async ValueTask<Stream> ConnectAsync(DnsEndPoint endPoint, bool allowPrivate, CancellationToken cancellationToken)
    {
        var addresses = await WebhookTargets.ResolveAllowedAsync(endPoint.Host, allowPrivate, cancellationToken);
        SocketException? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, endPoint.Port), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException ex)
            {
                last = ex;
                socket.Dispose();
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }
}
