using Microsoft.Extensions.Hosting;

namespace Holdfast.Storage;

/// <summary>
/// Brings the schema up to date before anything else starts (<see cref="StoreSchema"/>, once per process). Registered
/// first (in <c>AddHoldfastStorageOptions</c>), so services that read the store at start (bot restore, generation
/// recovery) run after it.
/// </summary>
internal sealed class StorageStartupService(StoreSchema schema) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => schema.EnsureAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
