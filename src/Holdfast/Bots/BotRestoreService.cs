using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Holdfast.Bots;

/// <summary>
/// On service start, hands every <c>active</c> bot session back to its connector (from its stored QR and login
/// state), so bots reconnect by themselves after a restart. Runs once; a failing session is logged and skipped.
/// Registered after the storage start-up service, so the schema is migrated first.
/// </summary>
internal sealed class BotRestoreService : BackgroundService
{
    private readonly BotManager _manager;
    private readonly Storage.StoreSchema _schema;
    private readonly BotOptions _options;
    private readonly ILogger<BotRestoreService> _logger;

    public BotRestoreService(BotManager manager, Storage.StoreSchema schema, IOptions<BotOptions> options, ILogger<BotRestoreService> logger)
    {
        _manager = manager;
        _schema = schema;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>Completes once every active session was handed to its connector (or the host stops).</summary>
    public Task Completion => ExecuteTask ?? Task.CompletedTask;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.RestoreOnStart)
        {
            return;
        }

        await Task.Yield();
        try
        {
            // The schema is current first (it waits for a store that is not reachable yet).
            await _schema.EnsureAsync(stoppingToken);
            await _manager.RestoreActiveSessionsAsync(_options, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            Log.BotRestoreAborted(_logger, ex);
        }
    }
}
