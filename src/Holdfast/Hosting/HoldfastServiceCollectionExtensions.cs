using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Generation;
using Holdfast.Storage;
using Holdfast.Storage.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Holdfast.Hosting;

/// <summary>Registers Holdfast's core services. Every method is idempotent (TryAdd*).</summary>
public static class HoldfastServiceCollectionExtensions
{
    /// <summary>Storage (options, the SQLite database), then each feature's services.</summary>
    public static IServiceCollection AddHoldfastCore(this IServiceCollection services)
    {
        services.AddHoldfastStorage();
        services.AddHoldfastGeneration();
        services.AddHoldfastBots();
        return services;
    }

    /// <summary>
    /// Storage options bound from the <c>Storage</c> section, their data directory resolved once at binding
    /// (<see cref="HoldfastConfiguration.ResolveDataDirectory"/>: <c>Storage:DataDirectory</c>, else <c>HOLDFAST_DATA</c>,
    /// else the XDG data directory) and validated at start-up (<see cref="StorageOptionsValidator"/>), and the
    /// embedded SQLite database.
    /// </summary>
    public static IServiceCollection AddHoldfastStorage(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<StorageOptions>()
            .BindConfiguration(StorageOptions.SectionName)
            .PostConfigure<IConfiguration>((options, configuration) => options.DataDirectory = HoldfastPaths.ResolveDataDirectory(
                options.DataDirectory,
                configuration[HoldfastPaths.DataEnvironmentVariable],
                configuration[HoldfastPaths.XdgDataHomeVariable],
                Environment.GetFolderPath(Environment.SpecialFolder.UserProfile)))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>());
        services.TryAddSingleton(sp => SqliteDatabase.FromOptions(
            sp.GetRequiredService<IOptions<StorageOptions>>().Value,
            sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IAuditLog, SqliteAuditLog>();

        // First hosted service: the schema is migrated (or verified) before anything reads the store at start.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, StorageStartupService>());
        return services;
    }
}
