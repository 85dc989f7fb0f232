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

    /// <summary>Storage options bound from the <c>Storage</c> section, and the embedded SQLite database.</summary>
    public static IServiceCollection AddHoldfastStorage(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.SectionName);
        services.TryAddSingleton(sp => SqliteDatabase.FromOptions(sp.GetRequiredService<IOptions<StorageOptions>>().Value));
        services.TryAddSingleton<IAuditLog, SqliteAuditLog>();

        // First hosted service: the schema is migrated (or verified) before anything reads the store at start.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, StorageStartupService>());
        return services;
    }
}
