using Microsoft.Extensions.Hosting;

namespace Holdfast.Storage;

/// <summary>
/// Brings the schema up to date before anything else starts (<see cref="StoreSchema"/>, once per process). Registered
/// first (in <c>AddHoldfastStorageOptions</c>), so services that read the store at start (bot restore, generation
/// recovery) run after it. On a networked store that is not reachable yet it does not hold the start up (see
/// <see cref="StoreSchema"/>).
/// </summary>
internal sealed class StorageStartupService(StoreSchema schema) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var ensure = schema.EnsureAsync(cancellationToken);

        // A networked store that is down keeps being retried in the background (StoreSchema); the host starts meanwhile,
        // so /readyz answers 503, and the runner and the bot restore wait for the same run before they read the store.
        return schema.RetriesUnreachableStore && !ensure.IsCompleted ? Task.CompletedTask : ensure;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
