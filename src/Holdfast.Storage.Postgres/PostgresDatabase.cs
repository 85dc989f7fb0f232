using System.Data;
using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Npgsql;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// One PostgreSQL database (Supabase included) behind one <see cref="NpgsqlDataSource"/>: connections, transactions
/// retried on transient errors, the migrations of <c>migrations/postgres</c> applied under an advisory lock (so nodes
/// starting together apply them once), and provider errors translated once, here, into Holdfast's own
/// (<see cref="StoreUnavailableException"/>: the server cannot be reached; <see cref="StoreConfigurationException"/>:
/// wrong password, missing database; <see cref="StoreSchemaException"/>: schema older or newer than the code).
/// Messages name the server as <c>host:port/database as user</c>, never with the password.
/// </summary>
public sealed class PostgresDatabase : IAsyncDisposable, IDisposable
{
    /// <summary>
    /// Key of the advisory lock taken while migrating ("Holdfast" in ASCII). The printed script
    /// (<see cref="PostgresSchemaScript"/>) takes the same one, so a paste and a starting node never interleave.
    /// </summary>
    public const long MigrationLockKey = 0x486F6C6466617374;

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;

    /// <summary>A database over <paramref name="store"/> (a postgres:// URI or an Npgsql keyword string).</summary>
    public PostgresDatabase(string store, TimeProvider? time = null)
        : this(PostgresConnectionString.Parse(store), time)
    {
    }

    /// <summary>A database over the given Npgsql settings.</summary>
    public PostgresDatabase(NpgsqlConnectionStringBuilder settings, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _time = time ?? TimeProvider.System;
        Settings = settings;
        Description = PostgresConnectionString.Describe(settings);

        // A node frozen inside a transaction (GC pause, SIGSTOP, a partition) would keep its row locks, and the nodes
        // taking its sessions over skip locked rows: the server ends such a session after IdleInTransactionTimeout, so
        // the locks go with it (every Holdfast transaction is a few statements sent back to back). It is a startup
        // parameter, not a SET: the pool resets every returned connection (DISCARD ALL), which undoes a SET but falls
        // back to the startup value; a SET on open held on a connection's first use only, and a split-brain test
        // caught the other node skipping a frozen node's rows for a minute.
        var withTimeout = new NpgsqlConnectionStringBuilder(settings.ConnectionString);
        withTimeout.Options = string.IsNullOrWhiteSpace(withTimeout.Options)
            ? IdleInTransactionOption
            : $"{withTimeout.Options} {IdleInTransactionOption}";
        // Statements Holdfast sends over and over (the group commit's, claims, run endings, reads of a session) are
        // prepared on each connection after a few uses, so PostgreSQL parses and plans them once per connection rather
        // than on every call (Npgsql's automatic preparation; the pool keeps them across returns). A connection string
        // that sets `Max Auto Prepare` itself (0 turns it off) wins.
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = settings.ConnectionString };
        if (!given.ContainsKey("Max Auto Prepare") && !given.ContainsKey("MaxAutoPrepare"))
        {
            withTimeout.MaxAutoPrepare = DefaultMaxAutoPrepare;
        }

        // Every Holdfast operation holds a connection for a few statements only (the LISTEN connection aside), so a
        // small pool serves many concurrent requests; Npgsql's default of 100 made a burst of 100 requests open 100
        // server processes (a fork and a SCRAM login each), which cost more than the requests themselves, and three
        // nodes at 100 each exceed PostgreSQL's default max_connections. `Maximum Pool Size` in the connection string wins.
        if (!given.ContainsKey("Maximum Pool Size") && !given.ContainsKey("MaxPoolSize"))
        {
            withTimeout.MaxPoolSize = DefaultMaxPoolSize;
        }

        _dataSource = new NpgsqlDataSourceBuilder(withTimeout.ConnectionString).Build();
    }

    /// <summary>How many statements each connection prepares automatically unless the connection string says otherwise.</summary>
    public const int DefaultMaxAutoPrepare = 64;

    /// <summary>How many connections the pool opens at most unless the connection string says otherwise.</summary>
    public const int DefaultMaxPoolSize = 20;

    /// <summary>How long a connection may sit idle inside a transaction before the server ends it (releasing its locks).</summary>
    public static readonly TimeSpan IdleInTransactionTimeout = TimeSpan.FromSeconds(5);

    private static readonly string IdleInTransactionOption =
        $"-c idle_in_transaction_session_timeout={(int)IdleInTransactionTimeout.TotalMilliseconds}";

    /// <summary>Where the database is, without the password: <c>host:port/database as user</c>.</summary>
    public string Description { get; }

    /// <summary>The Npgsql settings (holds the password: never log or show it; use <see cref="Description"/>).</summary>
    internal NpgsqlConnectionStringBuilder Settings { get; }

    /// <summary>The data source, for adapters that open their own connections (LISTEN, COPY).</summary>
    internal NpgsqlDataSource DataSource => _dataSource;

    /// <summary>The migrations this code knows (the embedded catalog; tests substitute older or newer lists).</summary>
    internal IReadOnlyList<Migration> Migrations { get; init; } = PostgresMigrations.Load();

    /// <summary>How many times an operation that failed on a transient error (connection lost, serialization failure, deadlock) is tried in all.</summary>
    internal int MaxAttempts { get; init; } = 5;

    /// <summary>Opens a connection from the pool; a server that cannot be reached or refuses the login is translated.</summary>
    public async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _dataSource.OpenConnectionAsync(cancellationToken);
        }
        catch (Exception ex) when (Translate(ex) is not null)
        {
            throw Translate(ex)!;
        }
    }

    /// <summary>Answers whether the server can be reached and logged into (a <c>SELECT 1</c>); throws the translated error when not.</summary>
    public Task PingAsync(CancellationToken cancellationToken = default) =>
        ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand("SELECT 1", connection);
                await command.ExecuteScalarAsync(ct);
                return 0;
            },
            cancellationToken);

    /// <summary>
    /// Runs <paramref name="work"/> in one transaction (READ COMMITTED unless <paramref name="isolation"/> says
    /// otherwise) and commits it; on a transient error the whole transaction is rolled back and run again, up to
    /// <see cref="MaxAttempts"/> times with backoff, so <paramref name="work"/> must be safe to repeat (every write of
    /// Holdfast is a compare-and-swap or keyed insert). The task completes once the commit is durable
    /// (<c>synchronous_commit</c> on).
    /// </summary>
    public Task<T> WriteAsync<T>(
        Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task<T>> work,
        CancellationToken cancellationToken = default,
        IsolationLevel isolation = IsolationLevel.ReadCommitted) =>
        WithRetryAsync(
            async ct =>
            {
                await using var connection = await _dataSource.OpenConnectionAsync(ct);
                await using var transaction = await connection.BeginTransactionAsync(isolation, ct);
                var result = await work(connection, transaction, ct);
                await transaction.CommitAsync(ct);
                return result;
            },
            cancellationToken);

    /// <summary>Runs <paramref name="work"/> on a pooled connection without a transaction, retried like <see cref="WriteAsync{T}"/>.</summary>
    public Task<T> ReadAsync<T>(Func<NpgsqlConnection, CancellationToken, Task<T>> work, CancellationToken cancellationToken = default) =>
        WithRetryAsync(
            async ct =>
            {
                await using var connection = await _dataSource.OpenConnectionAsync(ct);
                return await work(connection, ct);
            },
            cancellationToken);

    /// <summary>
    /// Applies the pending migrations in order, each in its own transaction with its <c>schema_migrations</c> row,
    /// while holding the advisory lock <see cref="MigrationLockKey"/>: a second node starting at the same moment waits,
    /// then finds nothing pending. Refuses (with <see cref="StoreSchemaException"/>) a database whose applied
    /// migrations differ from the code's or are newer than it, before applying anything. Returns what it applied.
    /// </summary>
    public async Task<IReadOnlyList<Migration>> MigrateAsync(CancellationToken cancellationToken = default)
    {
        return await WithRetryAsync(
            async ct =>
            {
                await using var connection = await _dataSource.OpenConnectionAsync(ct);
                await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_lock($1)", connection))
                {
                    lockCommand.Parameters.AddWithValue(MigrationLockKey);
                    await lockCommand.ExecuteNonQueryAsync(ct);
                }

                try
                {
                    var status = MigrationPlanner.Compare("PostgreSQL", Migrations, await ReadAppliedMigrationsAsync(connection, ct));
                    ThrowOnProblems(status);
                    foreach (var migration in status.Pending)
                    {
                        await ApplyAsync(connection, migration, ct);
                    }

                    return status.Pending;
                }
                finally
                {
                    await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", connection);
                    unlock.Parameters.AddWithValue(MigrationLockKey);
                    await unlock.ExecuteNonQueryAsync(CancellationToken.None);
                }
            },
            cancellationToken);
    }

    /// <summary>Compares <c>schema_migrations</c> with the embedded migrations, writing nothing (a database without the table has none applied).</summary>
    public Task<MigrationStatus> GetMigrationStatusAsync(CancellationToken cancellationToken = default) =>
        ReadAsync(
            async (connection, ct) => MigrationPlanner.Compare("PostgreSQL", Migrations, await ReadAppliedMigrationsAsync(connection, ct)),
            cancellationToken);

    /// <summary>
    /// Makes sure the schema is this code's: applies pending migrations when <paramref name="migrate"/> is on, else
    /// refuses a database with pending ones ("run `holdfast migrate`"); a newer or altered schema is always refused.
    /// </summary>
    public async Task EnsureSchemaAsync(bool migrate, CancellationToken cancellationToken = default)
    {
        if (migrate)
        {
            await MigrateAsync(cancellationToken);
            return;
        }

        var status = await GetMigrationStatusAsync(cancellationToken);
        ThrowOnProblems(status);
        if (status.Pending.Count > 0)
        {
            throw new StoreSchemaException(
                $"The PostgreSQL database {Description} is older than this Holdfast: {status.Pending.Count} migration(s) pending " +
                $"({string.Join(", ", status.Pending.Select(m => m.Id))}); run `holdfast migrate --store …` first.");
        }
    }

    /// <summary>Throws when the schema is not usable by this code (problems only; pending migrations are fine).</summary>
    public static void ThrowOnProblems(MigrationStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        if (status.Problems.Count > 0)
        {
            throw new StoreSchemaException(string.Join(Environment.NewLine, status.Problems));
        }
    }

    /// <summary>The rows of <c>schema_migrations</c> in version order; empty when the table does not exist.</summary>
    internal static async Task<IReadOnlyList<AppliedMigration>> ReadAppliedMigrationsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using (var exists = new NpgsqlCommand("SELECT to_regclass('public.schema_migrations') IS NOT NULL", connection))
        {
            if (await exists.ExecuteScalarAsync(cancellationToken) is not true)
            {
                return [];
            }
        }

        await using var command = new NpgsqlCommand("SELECT version, name, checksum, applied_at FROM public.schema_migrations ORDER BY version", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<AppliedMigration>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new AppliedMigration(reader.GetInt32(0), reader.GetString(1), reader.GetString(2), await reader.GetFieldValueAsync<DateTimeOffset>(3, cancellationToken)));
        }

        return rows;
    }

    /// <summary>
    /// Holdfast's exception for a provider error, or null when <paramref name="exception"/> is not one this boundary
    /// translates. The message names the server without its password.
    /// </summary>
    internal Exception? Translate(Exception exception) => PostgresErrors.Translate(exception, Description);

    private async Task ApplyAsync(NpgsqlConnection connection, Migration migration, CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        try
        {
            await using (var apply = new NpgsqlCommand(migration.Sql, connection, transaction))
            {
                await apply.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        catch (PostgresException ex) when (!ex.IsTransient)
        {
            throw new StoreSchemaException($"Migration {migration.Id} failed on {Description}: {ex.MessageText}; nothing of it was applied.", ex);
        }

        await using (var record = new NpgsqlCommand(
            """
            INSERT INTO public.schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (version) DO NOTHING
            """,
            connection,
            transaction))
        {
            record.Parameters.AddWithValue(migration.Version);
            record.Parameters.AddWithValue(migration.Name);
            record.Parameters.AddWithValue(migration.Checksum);
            record.Parameters.AddWithValue(_time.GetUtcNow());
            await record.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    private async Task<T> WithRetryAsync<T>(Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await operation(cancellationToken);
            }
            catch (Exception ex) when (attempt < MaxAttempts && PostgresErrors.IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(delay, _time, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
            catch (Exception ex) when (Translate(ex) is not null)
            {
                throw Translate(ex)!;
            }
        }
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    public void Dispose() => _dataSource.Dispose();
}
