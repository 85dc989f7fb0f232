using System.Globalization;
using System.Runtime.CompilerServices;
using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary><see cref="IStoreAdministration"/> of the embedded SQLite file.</summary>
internal sealed class SqliteStoreAdministration(SqliteDatabase database) : IStoreAdministration
{
    /// <summary>Every Holdfast table but <c>schema_migrations</c>, parents first (the order export writes and import loads).</summary>
    internal static readonly string[] Tables = ["users", "api_keys", "bot_sessions", "generation_sessions", "generation_log", "session_events"];

    public string Provider => StorageOptions.SqliteProvider;

    public string Location => database.Path;

    public bool SupportsOnlineBackup => true;

    public Task<IReadOnlyList<Migration>> MigrateAsync(CancellationToken cancellationToken = default) => database.MigrateAsync(cancellationToken);

    public async Task<MigrationStatus> GetSchemaStatusAsync(CancellationToken cancellationToken = default)
    {
        // Read-only on purpose: a probe must not take the writer lock, and sees what another process did underneath.
        var applied = await ReadAsync(connection => SqliteDatabase.ReadAppliedMigrationsAsync(connection, cancellationToken), cancellationToken);
        return MigrationPlanner.Compare(StorageOptions.SqliteProvider, database.Migrations, applied);
    }

    /// <summary>
    /// Also fails while the file is known damaged (<see cref="SqliteDatabase.Damage"/>) or writes fail (a full disk:
    /// a one-page write is tried each time, so the ping succeeds again by itself once space returns; the exception
    /// carries <see cref="StoreUnavailableException.RetryAfter"/>).
    /// </summary>
    public async Task PingAsync(CancellationToken cancellationToken = default)
    {
        if (database.Damage is { } damage)
        {
            throw new StoreUnavailableException(damage);
        }

        if (await database.ProbeWritableAsync(cancellationToken) is { } failure)
        {
            throw new StoreUnavailableException(failure) { RetryAfter = SqliteDatabase.WriteFailureRetryAfter };
        }

        await ReadAsync(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = "SELECT 1";
                return await command.ExecuteScalarAsync(cancellationToken);
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<SessionCount>> CountSessionsAsync(CancellationToken cancellationToken = default) =>
        ReadAsync<IReadOnlyList<SessionCount>>(
            async connection =>
            {
                var result = new List<SessionCount>();
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    SELECT 'bot', status, COUNT(*) FROM bot_sessions GROUP BY status
                    UNION ALL
                    SELECT 'generation', status, COUNT(*) FROM generation_sessions GROUP BY status
                    """;
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    var kind = reader.GetString(0) == "bot" ? SessionKind.Bot : SessionKind.Generation;
                    result.Add(new SessionCount(kind, reader.GetString(1), reader.GetInt64(2)));
                }

                return result;
            },
            cancellationToken);

    public async Task BackupAsync(string destinationPath, bool overwrite, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var pages = progress is null ? null : new Progress<CopyProgress>(p => progress.Report(new StoreProgress(p.PagesDone, p.PagesTotal, "backup")));
        await SqliteMaintenance.BackupAsync(database.Path, destinationPath, overwrite, pages, cancellationToken);
    }

    public async IAsyncEnumerable<StoreRecord> ExportAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);

        // One read transaction: every table is read from the same snapshot while writers go on (WAL).
        await using (var begin = connection.CreateCommand())
        {
            begin.CommandText = "BEGIN DEFERRED";
            await begin.ExecuteNonQueryAsync(cancellationToken);
        }

        foreach (var table in Tables)
        {
            await using var command = connection.CreateCommand();

            // The table name is one of the constants above, never input.
            command.CommandText = "SELECT * FROM " + table;
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var values = new Dictionary<string, object?>(reader.FieldCount, StringComparer.Ordinal);
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    values[reader.GetName(i)] = await reader.IsDBNullAsync(i, cancellationToken) ? null : reader.GetValue(i);
                }

                yield return new StoreRecord(table, values);
            }
        }
    }

    public Task<IReadOnlyDictionary<string, long>> ImportAsync(
        IAsyncEnumerable<StoreRecord> records, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default) =>
        throw new StoreFeatureNotSupportedException("Import into SQLite is not available in this version yet.");

    private async Task<T> ReadAsync<T>(Func<SqliteConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            return await database.ReadAsync(work, cancellationToken);
        }
        catch (SqliteException ex)
        {
            throw new StoreUnavailableException(
                string.Create(CultureInfo.InvariantCulture, $"The database '{database.Path}' does not answer: {ex.Message.TrimEnd('.')}."), ex);
        }
    }
}
