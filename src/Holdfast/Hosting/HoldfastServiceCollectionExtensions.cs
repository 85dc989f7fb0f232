using Holdfast.Bots;
using Holdfast.Generation;
using Holdfast.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Holdfast.Hosting;

/// <summary>Registers Holdfast's core services. Every method is idempotent (TryAdd*).</summary>
public static class HoldfastServiceCollectionExtensions
{
    /// <summary>
    /// Storage options and the start-up schema check, then each feature's services. The storage ports come from a
    /// provider registered beside it (<c>AddHoldfastSqliteStorage</c>, or <c>AddHoldfastStorage(configuration)</c> in the
    /// server, which picks the provider from the configuration).
    /// </summary>
    public static IServiceCollection AddHoldfastCore(this IServiceCollection services)
    {
        services.AddHoldfastStorageOptions();
        services.AddHoldfastGeneration();
        services.AddHoldfastBots();
        Webhooks.WebhookServiceCollectionExtensions.AddHoldfastWebhooks(services);
        return services;
    }

    /// <summary>
    /// What every provider shares: storage options bound from the <c>Storage</c> section, their data directory resolved
    /// once at binding (<see cref="HoldfastConfiguration.ResolveDataDirectory"/>: <c>Storage:DataDirectory</c>, else
    /// <c>HOLDFAST_DATA</c>, else the XDG data directory) and validated at start-up (<see cref="StorageOptionsValidator"/>),
    /// the in-process change signals (a networked provider registers its own first), and <see cref="StoreSchema"/>,
    /// which migrates (or checks) the schema once per start, as the first hosted service.
    /// </summary>
    public static IServiceCollection AddHoldfastStorageOptions(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        if (services.Any(d => d.ServiceType == typeof(StoreSchema)))
        {
            return services;
        }

        services.AddOptions<StorageOptions>()
            .BindConfiguration(StorageOptions.SectionName)
            .PostConfigure<IConfiguration>((options, configuration) =>
            {
                options.DataDirectory = HoldfastPaths.ResolveDataDirectory(
                    options.DataDirectory,
                    configuration[HoldfastPaths.DataEnvironmentVariable],
                    configuration[HoldfastPaths.XdgDataHomeVariable],
                    Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));
                options.ConnectionString = HoldfastConfiguration.ResolveStore(configuration);
            })
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>());
        services.TryAddSingleton<InProcessChangeSignals>();
        services.TryAddSingleton<IChangeSignals>(sp => sp.GetRequiredService<InProcessChangeSignals>());
        services.TryAddSingleton<StoreSchema>();

        // First hosted service: the schema is migrated (or verified) before anything reads the store at start.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, StorageStartupService>());
        return services;
    }
}
