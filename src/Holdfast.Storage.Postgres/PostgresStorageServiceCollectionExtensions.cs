using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Generation;
using Holdfast.Hosting;
using Holdfast.Security;
using Holdfast.Storage;
using Holdfast.Storage.Postgres;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers PostgreSQL (Supabase included) behind every storage port.</summary>
public static class PostgresStorageServiceCollectionExtensions
{
    /// <summary>
    /// The PostgreSQL database of <see cref="StorageOptions.ConnectionString"/> (<c>--store</c>, <c>HOLDFAST_STORE</c>,
    /// <c>Storage:ConnectionString</c>) as <see cref="IGenerationStore"/>, <see cref="IRunStore"/>, <see cref="IBotStore"/>,
    /// <see cref="IApiKeyStore"/>, <see cref="IAuditLog"/>, <see cref="IStoreAdministration"/> and
    /// <see cref="IChangeSignals"/> (<c>LISTEN/NOTIFY</c>, so every node on the database hears every change). Opens no
    /// connection until the first use. Idempotent.
    /// </summary>
    public static IServiceCollection AddHoldfastPostgresStorage(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new PostgresStore(
            sp.GetRequiredService<IOptions<StorageOptions>>().Value.ConnectionString
                ?? throw new InvalidOperationException("Storage:ConnectionString is not set; AddHoldfastPostgresStorage needs a PostgreSQL connection string."),
            sp.GetRequiredService<TimeProvider>()));

        // Before the shared options register the in-process signals (TryAdd): this node hears the others.
        services.TryAddSingleton(sp => sp.GetRequiredService<PostgresStore>().Signals);
        services.AddHoldfastStorageOptions();
        services.TryAddSingleton(sp => sp.GetRequiredService<PostgresStore>().Generations);
        services.TryAddSingleton(sp => sp.GetRequiredService<PostgresStore>().Runs);
        services.TryAddSingleton(sp => sp.GetRequiredService<PostgresStore>().Bots);
        services.TryAddSingleton(sp => sp.GetRequiredService<PostgresStore>().BotAuthKeys);
        services.TryAddSingleton(sp => sp.GetRequiredService<PostgresStore>().ApiKeys);
        services.TryAddSingleton(sp => sp.GetRequiredService<PostgresStore>().Audit);
        services.TryAddSingleton(sp => sp.GetRequiredService<PostgresStore>().Webhooks);
        services.TryAddSingleton(sp => sp.GetRequiredService<PostgresStore>().Administration);
        return services;
    }
}
