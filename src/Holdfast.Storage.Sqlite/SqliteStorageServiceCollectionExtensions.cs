using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Generation;
using Holdfast.Hosting;
using Holdfast.Security;
using Holdfast.Storage;
using Holdfast.Storage.Sqlite;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the embedded SQLite store behind every storage port.</summary>
public static class SqliteStorageServiceCollectionExtensions
{
    /// <summary>
    /// The SQLite file of <see cref="StorageOptions"/> (<c>Storage:DataDirectory</c>/<c>Storage:SqliteFile</c>) as
    /// <see cref="IGenerationStore"/>, <see cref="IRunStore"/>, <see cref="IBotStore"/>, <see cref="IApiKeyStore"/>,
    /// <see cref="IAuditLog"/> and <see cref="IStoreAdministration"/>, with in-process change signals. Idempotent.
    /// </summary>
    public static IServiceCollection AddHoldfastSqliteStorage(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddHoldfastStorageOptions();
        services.TryAddSingleton(sp => SqliteDatabase.FromOptions(
            sp.GetRequiredService<IOptions<StorageOptions>>().Value,
            sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new SqliteGenerationStore(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IGenerationStore>(sp => sp.GetRequiredService<SqliteGenerationStore>());
        services.TryAddSingleton<IRunStore>(sp => sp.GetRequiredService<SqliteGenerationStore>());
        services.TryAddSingleton<IBotStore, SqliteBotStore>();
        services.TryAddSingleton<IBotAuthKeyStore, SqliteBotAuthKeyStore>();
        services.TryAddSingleton<IAuditLog, SqliteAuditLog>();
        services.TryAddSingleton<Holdfast.Webhooks.IWebhookStore>(sp => new SqliteWebhookStore(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IApiKeyStore, SqliteApiKeyStore>();
        services.TryAddSingleton<IStoreAdministration, SqliteStoreAdministration>();
        return services;
    }
}
