using Holdfast.Hosting;
using Holdfast.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Server.Hosting;

/// <summary>
/// The one call that picks the storage provider behind the ports, for <c>holdfast serve</c> and for the commands that
/// open the store themselves (<c>keys</c>, <c>migrate</c>).
/// </summary>
public static class StorageRegistration
{
    /// <summary>
    /// Registers the storage provider <paramref name="configuration"/> names: PostgreSQL when the store
    /// (<c>Storage:ConnectionString</c>, <c>--store</c>, <c>HOLDFAST_STORE</c>) is a PostgreSQL connection string, else
    /// the embedded SQLite file (<c>Storage:DataDirectory</c>, <c>Storage:SqliteFile</c>). Idempotent.
    /// </summary>
    public static IServiceCollection AddHoldfastStorage(this IServiceCollection services, IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        return ChooseProvider(configuration) switch
        {
            StorageOptions.PostgresProvider => services.AddHoldfastPostgresStorage(),
            _ => services.AddHoldfastSqliteStorage(),
        };
    }

    /// <summary>
    /// The provider <paramref name="configuration"/>'s store names (<see cref="StorageOptions.InferProvider"/>): <c>postgres</c>
    /// for a PostgreSQL connection string, else <c>sqlite</c> (a value that is neither is refused at start-up by
    /// <see cref="StorageOptionsValidator"/> with a clear message).
    /// </summary>
    public static string ChooseProvider(IConfiguration? configuration) =>
        configuration is not null && StorageOptions.InferProvider(HoldfastConfiguration.ResolveStore(configuration)) == StorageOptions.PostgresProvider
            ? StorageOptions.PostgresProvider
            : StorageOptions.SqliteProvider;

    /// <summary>
    /// The complete schema of <paramref name="provider"/> as SQL for people (<c>holdfast migrate --print</c>): PostgreSQL's
    /// as one idempotent script that records every migration (for the Supabase SQL editor); SQLite's as every migration
    /// headed by its id and checksum.
    /// </summary>
    public static string SchemaScript(string provider) =>
        provider == StorageOptions.PostgresProvider
            ? Holdfast.Storage.Postgres.PostgresSchemaScript.Build()
            : Holdfast.Storage.Sqlite.SqliteSchemaScript.Build();
}
