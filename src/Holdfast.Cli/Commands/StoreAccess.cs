using Holdfast.Hosting;
using Holdfast.Security;
using Holdfast.Server.Hosting;
using Holdfast.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Holdfast.Cli.Commands;

/// <summary>
/// The store as the commands that open it themselves see it (<c>migrate</c>, <c>keys</c> with no server listening):
/// the provider <c>holdfast serve</c> would use, from the same configuration, behind the same ports. No command runs
/// SQL itself.
/// </summary>
internal sealed class StoreAccess : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private StoreAccess(ServiceProvider services)
    {
        _services = services;
        Administration = services.GetRequiredService<IStoreAdministration>();
    }

    /// <summary>Migrations, status, location of the store.</summary>
    public IStoreAdministration Administration { get; }

    /// <summary>The runner's port: the nodes on the store and the sessions they hold.</summary>
    public Holdfast.Generation.IRunStore Runs => _services.GetRequiredService<Holdfast.Generation.IRunStore>();

    /// <summary>The lease duration in force (<c>Cluster:LeaseDuration</c>): a node whose heartbeat is older is not alive.</summary>
    public TimeSpan LeaseDuration =>
        _services.GetRequiredService<IConfiguration>().GetValue<TimeSpan?>("Cluster:LeaseDuration") ?? new Holdfast.Cluster.ClusterOptions().LeaseDuration;

    /// <summary>API keys over the store's key port.</summary>
    public ApiKeys Keys => _services.GetRequiredService<ApiKeys>();

    /// <summary>
    /// Opens the configured store (settings validated like at <c>serve</c> start-up: a bad one throws
    /// <see cref="Microsoft.Extensions.Options.OptionsValidationException"/>); with <paramref name="migrate"/>, applies
    /// pending migrations first (a fresh data directory gets its schema).
    /// </summary>
    public static async Task<StoreAccess> OpenAsync(bool migrate, CancellationToken cancellationToken) =>
        await OpenAsync(migrate, store: null, cancellationToken);

    /// <summary>
    /// Opens <paramref name="store"/> (a <c>--store</c> value) or, when null, the configured store, like
    /// <see cref="OpenAsync(bool, CancellationToken)"/>.
    /// </summary>
    public static async Task<StoreAccess> OpenAsync(bool migrate, string? store, CancellationToken cancellationToken)
    {
        var configuration = StoreOption.Configuration(store);
        _ = HoldfastConfiguration.GetStorageOptions(configuration);
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddHoldfastStorage(configuration);
        services.TryAddSingleton<ApiKeys>();
        var provider = services.BuildServiceProvider();
        var access = new StoreAccess(provider);
        try
        {
            if (migrate)
            {
                await access.Administration.MigrateAsync(cancellationToken);
            }

            return access;
        }
        catch
        {
            await access.DisposeAsync();
            throw;
        }
    }

    /// <summary>The service provider behind the ports (export/import read the bot options from it).</summary>
    public IServiceProvider Services => _services;

    public ValueTask DisposeAsync() => _services.DisposeAsync();
}
