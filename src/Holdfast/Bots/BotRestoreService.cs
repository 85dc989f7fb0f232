using Holdfast.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Holdfast.Bots;

/// <summary>
/// Runs the bot sessions of this node under leases. On start it hands every <c>active</c> bot session that no other
/// live node holds back to its connector (from its stored QR and login state), so bots reconnect by themselves after a
/// restart. Then, every <see cref="Cluster.ClusterOptions.RenewInterval"/>: it renews this node's bot leases in one
/// statement (dropping, with a log line, every connection whose lease another node took over while this one was
/// paused), and takes over the sessions whose node died (lease expired) or stopped (lease released; a stopping node
/// signals it, so the others act at once). On a graceful stop it hands its sessions over. On SQLite the one node holds
/// every lease; the code path is the same. Off with <see cref="BotOptions.RestoreOnStart"/> = false.
/// Registered after the storage start-up service, so the schema is migrated first.
/// </summary>
internal sealed class BotRestoreService : BackgroundService
{
    private readonly BotManager _manager;
    private readonly StoreSchema _schema;
    private readonly BotOptions _options;
    private readonly Cluster.ClusterOptions _cluster;
    private readonly IChangeSignals? _signals;
    private readonly TimeProvider _time;
    private readonly ILogger<BotRestoreService> _logger;
    private readonly TaskCompletionSource _restored = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _running;

    public BotRestoreService(
        BotManager manager,
        StoreSchema schema,
        IOptions<BotOptions> options,
        IOptions<Cluster.ClusterOptions> cluster,
        TimeProvider time,
        ILogger<BotRestoreService> logger,
        IChangeSignals? signals = null)
    {
        _manager = manager;
        _schema = schema;
        _options = options.Value;
        _cluster = cluster.Value;
        _time = time;
        _logger = logger;
        _signals = signals;
    }

    /// <summary>Completes once every active session was handed to its connector at start (or the host stops).</summary>
#pragma warning disable VSTHRD003 // The source is ours; ExecuteAsync completes it.
    public Task Completion => _restored.Task;
#pragma warning restore VSTHRD003

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.RestoreOnStart)
        {
            _restored.TrySetResult();
            return;
        }

        await Task.Yield();
        using var released = _signals?.Subscribe(BotSignals.Leases);
        try
        {
            // The schema is current first (it waits for a store that is not reachable yet).
            await _schema.EnsureAsync(stoppingToken);
            await _manager.EnsureAuthKeyMatchesStoreAsync(stoppingToken);
            _running = true;
            await _manager.RestoreActiveSessionsAsync(_options, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex)
        {
            Log.BotRestoreAborted(_logger, ex);
            if (!_running)
            {
                return;
            }
        }
        finally
        {
            _restored.TrySetResult();
        }

        // Renewal on its own loop, so a slow takeover (retries with backoff) never lets this node's leases lapse.
        var renewal = Task.Run(() => RenewLoopAsync(stoppingToken), CancellationToken.None);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                using (var interval = new CancellationTokenSource(_cluster.RenewInterval, _time))
                using (var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, interval.Token))
                {
                    try
                    {
                        await (released?.WaitAsync(tick.Token) ?? Task.Delay(Timeout.Infinite, tick.Token));
                    }
                    catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                    {
                        // The interval passed.
                    }
                }

                try
                {
                    await _manager.TakeOverAbandonedAsync(_options, stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }
#pragma warning disable CA1031 // The takeover must keep going after a store hiccup; it retries on the next tick.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    Log.BotRestoreAborted(_logger, ex);
                }
            }
        }
        finally
        {
            await renewal;
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (!_running)
        {
            return;
        }

        try
        {
            await _manager.HandOverAsync(cancellationToken);
        }
#pragma warning disable CA1031 // Stopping anyway: the leases then expire and the other nodes take the sessions over.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.BotLeaseRenewalFailed(_logger, ex, _manager.NodeId);
        }
    }

    private async Task RenewLoopAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_cluster.RenewInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await _manager.RenewLeasesAsync(stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // Renewal must keep going after a store hiccup; it retries on the next tick.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    Log.BotLeaseRenewalFailed(_logger, ex, _manager.NodeId);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopped.
        }
    }
}
