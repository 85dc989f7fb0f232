using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Holdfast.Storage;

/// <summary>
/// Brings the database schema up to date before anything else starts: applies pending migrations when
/// <see cref="StorageOptions.MigrateOnStart"/> is on, else refuses to start while migrations are pending. Either way a
/// tampered or newer-than-code database refuses start-up with <see cref="StoreSchemaException"/>. Registered first
/// (in <c>AddHoldfastStorage</c>), so services that read the store at start (bot restore, generation restore) run
/// after it. The options were validated before (<see cref="StorageOptionsValidator"/>, on start), so the provider is
/// SQLite here: any other is refused with a clear message instead of being skipped.
/// </summary>
internal sealed class StorageStartupService : IHostedService
{
    private readonly SqliteDatabase _database;
    private readonly StorageOptions _options;

    public StorageStartupService(SqliteDatabase database, IOptions<StorageOptions> options)
    {
        _database = database;
        _options = options.Value;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_options.MigrateOnStart)
        {
            await _database.MigrateAsync(cancellationToken);
            return;
        }

        var status = await _database.GetMigrationStatusAsync(cancellationToken);
        SqliteDatabase.ThrowOnProblems(status);
        if (status.Pending.Count > 0)
        {
            throw new StoreSchemaException(
                $"The database has {status.Pending.Count} pending migration(s) ({string.Join(", ", status.Pending.Select(m => m.Id))}) " +
                "and Storage:MigrateOnStart is off: run `holdfast migrate` first.");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
