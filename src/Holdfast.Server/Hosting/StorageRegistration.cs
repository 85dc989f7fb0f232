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
    /// Registers the storage provider <paramref name="configuration"/> names. Today that is always the embedded SQLite
    /// file (<c>Storage:DataDirectory</c>, <c>Storage:SqliteFile</c>); the PostgreSQL provider plugs in here
    /// (<c>AddHoldfastPostgresStorage</c>) when the configured connection string is a PostgreSQL one. Idempotent.
    /// </summary>
    public static IServiceCollection AddHoldfastStorage(this IServiceCollection services, IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        return ChooseProvider(configuration) switch
        {
            // PostgresProvider => services.AddHoldfastPostgresStorage(...), once the provider exists.
            _ => services.AddHoldfastSqliteStorage(),
        };
    }

    /// <summary>
    /// The provider <paramref name="configuration"/> asks for (<c>Storage:Provider</c>; default <c>sqlite</c>). A provider
    /// this build cannot run on is refused at start-up by <see cref="StorageOptionsValidator"/> with a clear message.
    /// </summary>
    public static string ChooseProvider(IConfiguration? configuration) =>
        configuration?[$"{StorageOptions.SectionName}:{nameof(StorageOptions.Provider)}"]?.Trim().ToLowerInvariant() switch
        {
            StorageOptions.PostgresProvider => StorageOptions.PostgresProvider,
            _ => StorageOptions.SqliteProvider,
        };
}
