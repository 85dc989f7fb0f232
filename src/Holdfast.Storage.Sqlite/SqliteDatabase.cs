using System.Data;
using System.Globalization;
using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary>
/// The embedded SQLite database file: WAL journal, busy timeout, foreign keys on, and one writer path.
/// Every write goes through <see cref="WriteAsync{T}"/>, which serialises writers inside this process (so they never
/// fight over the lock) and opens an IMMEDIATE transaction (so a second process waits up to the busy timeout
/// instead of failing). Reads run on their own connections in parallel, as WAL allows.
/// </summary>
public sealed class SqliteDatabase : IDisposable
{
    private readonly SemaphoreSlim _writer = new(1, 1);
    private readonly string _connectionString;
    private readonly int _busyTimeoutMs;
    private readonly string _synchronous;
    private readonly TimeProvider _time;

    /// <summary>
    /// A database over the file at <paramref name="path"/>; <paramref name="time"/> stamps the migrations it applies
    /// (default: the system clock).
    /// </summary>
    public SqliteDatabase(string path, TimeSpan? busyTimeout = null, string synchronous = "FULL", TimeProvider? time = null)
    {
        Path = System.IO.Path.GetFullPath(path);
        _time = time ?? TimeProvider.System;
        _busyTimeoutMs = (int)(busyTimeout ?? TimeSpan.FromSeconds(10)).TotalMilliseconds;
        _synchronous = synchronous.ToUpperInvariant() switch
        {
            "FULL" => "FULL",
            "NORMAL" => "NORMAL",
            "EXTRA" => "EXTRA",
            _ => throw new ArgumentOutOfRangeException(nameof(synchronous), synchronous, "Use FULL, NORMAL or EXTRA."),
        };
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            ForeignKeys = true,
            DefaultTimeout = Math.Max(1, _busyTimeoutMs / 1000),
        }.ToString();
    }

    /// <summary>Creates the database from <see cref="StorageOptions"/>, creating the data directory when needed.</summary>
    public static SqliteDatabase FromOptions(StorageOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var path = options.ResolveSqlitePath();
        HoldfastPaths.EnsureDirectory(System.IO.Path.GetDirectoryName(path)!);
        return new SqliteDatabase(path, options.BusyTimeout, options.SqliteSynchronous, time);
    }

    /// <summary>Full path of the database file.</summary>
    public string Path { get; }

    /// <summary>The migrations this code knows (the embedded catalog; tests substitute older or newer lists).</summary>
    internal IReadOnlyList<Migration> Migrations { get; init; } = KnownMigrations;

    /// <summary>The SQLite migrations embedded in this assembly (<c>migrations/sqlite/NNNN_*.sql</c>), in version order.</summary>
    public static IReadOnlyList<Migration> KnownMigrations => MigrationCatalog.Load(StorageOptions.SqliteProvider, typeof(SqliteDatabase).Assembly);

    /// <summary>Opens a connection with the per-connection pragmas applied.</summary>
    public async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = string.Create(
                CultureInfo.InvariantCulture,
                $"PRAGMA busy_timeout = {_busyTimeoutMs}; PRAGMA foreign_keys = ON; PRAGMA synchronous = {_synchronous};");
            await command.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> in one IMMEDIATE transaction on the single writer path and commits it.
    /// The task completes once the transaction is durable (per <c>PRAGMA synchronous</c>); if
    /// <paramref name="work"/> throws, everything it did is rolled back.
    /// </summary>
    public async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken = default)
    {
        await _writer.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(IsolationLevel.Serializable, cancellationToken);
            var result = await work(connection, transaction);
            await transaction.CommitAsync(cancellationToken);
            return result;
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is 5 or 6)
        {
            throw new StoreUnavailableException($"The database '{Path}' stayed locked by another process for longer than the busy timeout.", ex);
        }
        finally
        {
            _writer.Release();
        }
    }

    /// <summary>Runs <paramref name="work"/> on a fresh connection for reading.</summary>
    public async Task<T> ReadAsync<T>(Func<SqliteConnection, Task<T>> work, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        return await work(connection);
    }

    /// <summary>
    /// Switches the file to WAL, then applies pending migrations in order, one transaction each, recording every one
    /// in <c>schema_migrations</c>. Refuses (with <see cref="StoreSchemaException"/>) a database whose applied
    /// migrations differ from the code's or are newer than it. A migration whose SQL fails is rolled back whole and
    /// reported as a <see cref="StoreSchemaException"/> naming it (the migrations before it stay applied). Returns the
    /// migrations it applied.
    /// </summary>
    public async Task<IReadOnlyList<Migration>> MigrateAsync(CancellationToken cancellationToken = default)
    {
        var status = await GetMigrationStatusAsync(cancellationToken);
        ThrowOnProblems(status);
        foreach (var migration in status.Pending)
        {
            await WriteAsync(
                async (connection, transaction) =>
                {
                    await using var apply = connection.CreateCommand();
                    apply.Transaction = transaction;
                    apply.CommandText = migration.Sql;
                    try
                    {
                        await apply.ExecuteNonQueryAsync(cancellationToken);
                    }
                    catch (SqliteException ex) when (ex.SqliteErrorCode is not (5 or 6))
                    {
                        // The transaction is rolled back by WriteAsync: no statement of this migration stays.
                        throw new StoreSchemaException(
                            $"Migration {migration.Id} failed: {ex.Message.TrimEnd('.')}; nothing of it was applied.", ex);
                    }

                    await using var record = connection.CreateCommand();
                    record.Transaction = transaction;
                    record.CommandText = """
                        INSERT INTO schema_migrations (version, name, checksum, applied_at)
                        VALUES ($version, $name, $checksum, $applied_at)
                        """;
                    record.Parameters.AddWithValue("$version", migration.Version);
                    record.Parameters.AddWithValue("$name", migration.Name);
                    record.Parameters.AddWithValue("$checksum", migration.Checksum);
                    record.Parameters.AddWithValue("$applied_at", SqliteTime.Format(_time.GetUtcNow()));
                    await record.ExecuteNonQueryAsync(cancellationToken);
                    return 0;
                },
                cancellationToken);
        }

        return status.Pending;
    }

    /// <summary>Reads <c>schema_migrations</c> (creating it if absent) and compares it with the embedded migrations.</summary>
    public async Task<MigrationStatus> GetMigrationStatusAsync(CancellationToken cancellationToken = default)
    {
        await EnsureBootstrapAsync(cancellationToken);
        var applied = await ReadAsync(connection => ReadAppliedMigrationsAsync(connection, cancellationToken), cancellationToken);
        return MigrationPlanner.Compare("sqlite", Migrations, applied);
    }

    /// <summary>The rows of <c>schema_migrations</c> in version order; empty when the table does not exist.</summary>
    internal static async Task<IReadOnlyList<AppliedMigration>> ReadAppliedMigrationsAsync(SqliteConnection connection, CancellationToken cancellationToken = default)
    {
        await using (var exists = connection.CreateCommand())
        {
            exists.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
            if (Convert.ToInt64(await exists.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture) == 0)
            {
                return [];
            }
        }

        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<AppliedMigration>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new AppliedMigration(reader.GetInt32(0), reader.GetString(1), reader.GetString(2), SqliteTime.Parse(reader.GetString(3))));
        }

        return rows;
    }

    /// <summary>Throws when the schema is not usable by this code (problems only; pending migrations are fine).</summary>
    public static void ThrowOnProblems(MigrationStatus status)
    {
        if (status.Problems.Count > 0)
        {
            throw new StoreSchemaException(string.Join(Environment.NewLine, status.Problems));
        }
    }

    private async Task EnsureBootstrapAsync(CancellationToken cancellationToken)
    {
        await WriteAsync(
            async (connection, transaction) =>
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version    INTEGER PRIMARY KEY,
                        name       TEXT NOT NULL,
                        checksum   TEXT NOT NULL,
                        applied_at TEXT NOT NULL
                    );
                    """;
                await command.ExecuteNonQueryAsync(cancellationToken);
                return 0;
            },
            cancellationToken);

        // journal_mode cannot change inside a transaction; it is persistent once set.
        await using var connection = await OpenAsync(cancellationToken);
        await using var wal = connection.CreateCommand();
        wal.CommandText = "PRAGMA journal_mode = WAL;";
        await wal.ExecuteScalarAsync(cancellationToken);
    }

    public void Dispose() => _writer.Dispose();
}
