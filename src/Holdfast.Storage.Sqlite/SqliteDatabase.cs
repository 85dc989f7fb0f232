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
/// <para>
/// The connections of reads and writes stay open between uses (<see cref="CachedConnection"/>: the writer's one, and
/// up to <see cref="MaxIdleReaders"/> idle readers), with their statements kept prepared; <see cref="Command"/> gives a
/// store the kept statement for its SQL. A connection whose work failed with a SQLite error, or whose rows could not be
/// decoded, is closed rather than kept; <see cref="Dispose"/> closes them all.
/// </para>
/// </summary>
public sealed class SqliteDatabase : IDisposable
{
    /// <summary>How often (in SQLite steps: pages and cells checked) a quick_check asks whether its time is up.</summary>
    private const int QuickCheckProgressSteps = 100;

    /// <summary>Reader connections kept open while idle; more may be open at once, and those are closed after use.</summary>
    internal const int MaxIdleReaders = 16;

    private readonly WriteQueue _writes = new();
    private readonly string _connectionString;
    private readonly string _cachedConnectionString;
    private readonly Lock _idleLock = new();
    private readonly Stack<CachedConnection> _idleReaders = new();
    private CachedConnection? _writerConnection;
    private volatile bool _disposed;
    private int _checkpointing;
    private long _lastCheckpoint;
    private long _checkpoints;

    /// <summary>Shortest time between two background WAL checkpoints (see <see cref="StartCheckpointIfDue"/>).</summary>
    internal static readonly TimeSpan CheckpointInterval = TimeSpan.FromMilliseconds(200);

    private long _commits;

    /// <summary>Write transactions committed (for tests: writes that arrive together share one).</summary>
    internal long Commits => Interlocked.Read(ref _commits);

    /// <summary>Background WAL checkpoints completed (for tests).</summary>
    internal long Checkpoints => Interlocked.Read(ref _checkpoints);
    private readonly int _busyTimeoutMs;
    private readonly string _synchronous;
    private readonly TimeProvider _time;
    private volatile string? _writeFailure;
    private volatile string? _damage;
    private bool _fileEnsured;

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

        // Kept open by this database itself (not in Microsoft.Data.Sqlite's pool): closed when dropped or disposed.
        _cachedConnectionString = new SqliteConnectionStringBuilder(_connectionString) { Pooling = false }.ToString();
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
    public Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken = default) =>
        OpenCoreAsync(new SqliteConnection(_connectionString), cancellationToken);

    /// <summary>
    /// The command for <paramref name="sql"/> on <paramref name="connection"/> in <paramref name="transaction"/>,
    /// without parameters: on a connection of <see cref="ReadAsync{T}"/> or <see cref="WriteAsync{T}"/> the statement
    /// kept prepared for that text (see <see cref="CachedConnection"/>), else a new command. Dispose it after use.
    /// </summary>
    internal static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        if (connection is CachedConnection cached)
        {
            return cached.Statement(sql, transaction);
        }

        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    /// <summary>Idle reader connections kept open now (for tests).</summary>
    internal int IdleReaderCount
    {
        get
        {
            lock (_idleLock)
            {
                return _idleReaders.Count;
            }
        }
    }

    /// <summary>The writer's connection kept open between writes, if any (for tests).</summary>
    internal CachedConnection? WriterConnection => _writerConnection;

    private async Task<SqliteConnection> OpenCoreAsync(SqliteConnection connection, CancellationToken cancellationToken)
    {
        if (!_fileEnsured)
        {
            EnsureFile();
        }

        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = string.Create(
                CultureInfo.InvariantCulture,
                $"PRAGMA busy_timeout = {_busyTimeoutMs}; PRAGMA foreign_keys = ON; PRAGMA synchronous = {_synchronous}; PRAGMA wal_autocheckpoint = 0;");
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
    /// A new database file starts owner-only (0600) whatever the umask (SQLite gives its <c>-wal</c> and <c>-shm</c>
    /// files the database file's mode). When it cannot be created here, SQLite's own open reports why.
    /// </summary>
    private void EnsureFile()
    {
        try
        {
            HoldfastPaths.EnsureOwnerOnlyFile(Path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        _fileEnsured = true;
    }

    /// <summary>
    /// Runs <paramref name="work"/> in one IMMEDIATE transaction on the single writer path and commits it.
    /// The task completes once the transaction is durable (per <c>PRAGMA synchronous</c>); if
    /// <paramref name="work"/> throws, everything it did is rolled back.
    /// </summary>
    public Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken = default) =>
        WriteCoreAsync(work, priority: false, cancellationToken);

    /// <summary>
    /// Like <see cref="WriteAsync{T}"/>, but the transaction goes before every ordinary write still waiting for the
    /// writer (lease renewal: a queue of group commits and controls must not make a lease lapse).
    /// </summary>
    public Task<T> WriteAheadAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken = default) =>
        WriteCoreAsync(work, priority: true, cancellationToken);

    private async Task<T> WriteCoreAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, bool priority, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var write = new PendingWrite<T>(work, cancellationToken);
        if (_writes.Enqueue(write, priority))
        {
            // No batch was running: this caller runs the next one itself (no thread hop for a write alone), and hands
            // whatever queued meanwhile to a batch loop on the thread pool.
            await RunBatchAsync(_writes.TakeBatch());
            var next = _writes.TakeBatch();
            if (next.Count > 0)
            {
                _ = Task.Run(() => RunBatchesAsync(next), CancellationToken.None);
            }
        }
        else if (cancellationToken.CanBeCanceled)
        {
            await using (cancellationToken.Register(() =>
            {
                if (_writes.Remove(write))
                {
                    write.Fail(new OperationCanceledException(cancellationToken));
                }
            }))
            {
                return await write.Completion;
            }
        }

        return await write.Completion;
    }

    private async Task RunBatchesAsync(List<PendingWrite> batch)
    {
        while (batch.Count > 0)
        {
            await RunBatchAsync(batch);
            batch = _writes.TakeBatch();
        }
    }

    /// <summary>
    /// Runs the writes of <paramref name="batch"/> in one IMMEDIATE transaction and commits it; each write's task
    /// completes once the transaction is durable (per <c>PRAGMA synchronous</c>). With more than one write, each runs
    /// inside a savepoint: a write that throws is rolled back alone and its caller gets its exception, the others still
    /// commit. A failure that ends the transaction itself (a full disk, an I/O error, a damaged page, a lock held too
    /// long, a failed commit) fails every write that ran in it; the writes not run yet go back to the head of the
    /// queue. A write's work never runs twice.
    /// </summary>
    private async Task RunBatchAsync(List<PendingWrite> batch)
    {
        CachedConnection? connection = null;
        var keep = true;
        var ran = new List<PendingWrite>(batch.Count);
        var failed = new List<(PendingWrite Write, Exception Error)>();
        var next = 0;
        var begun = false;
        try
        {
            connection = Interlocked.Exchange(ref _writerConnection, null) ?? await OpenCachedAsync(CancellationToken.None);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(IsolationLevel.Serializable, CancellationToken.None);
            begun = true;
            var savepoints = batch.Count > 1;
            for (; next < batch.Count; next++)
            {
                var write = batch[next];
                if (write.IsCanceled)
                {
                    failed.Add((write, new OperationCanceledException()));
                    continue;
                }

                if (savepoints)
                {
                    await transaction.SaveAsync(Savepoint);
                }

                try
                {
                    await write.RunAsync(connection, transaction);
                }
                catch (Exception ex) when (savepoints && !EndsTransaction(connection, ex))
                {
                    // This write alone is undone; a connection that saw a SQLite error is not kept.
                    await transaction.RollbackAsync(Savepoint);
                    await transaction.ReleaseAsync(Savepoint);
                    keep &= KeepsConnection(ex);
                    failed.Add((write, ex));
                    continue;
                }
                catch (Exception ex) when (!savepoints && KeepsConnection(ex))
                {
                    // The caller's own refusal (a conflict, a lost lease): once rolled back, the connection stays good.
                    await transaction.RollbackAsync(CancellationToken.None);
                    failed.Add((write, ex));
                    next = batch.Count;
                    break;
                }

                if (savepoints)
                {
                    await transaction.ReleaseAsync(Savepoint);
                }

                ran.Add(write);
            }

            if (ran.Count > 0)
            {
                await transaction.CommitAsync(CancellationToken.None);
                Interlocked.Increment(ref _commits);
                _writeFailure = null;
            }
            else if (savepoints)
            {
                await transaction.RollbackAsync(CancellationToken.None);
            }
        }
        catch (Exception ex)
        {
            keep = false;
            var error = await TranslateWriteFailureAsync(ex);
            if (!begun)
            {
                // No transaction (the file cannot be opened, another process held the lock too long): it is the same
                // for every write of the batch, and none of them ran.
                next = batch.Count;
                failed.AddRange(batch.Select(write => (write, error)));
            }
            else if (next < batch.Count)
            {
                failed.Add((batch[next], error));
                next++;
            }

            foreach (var write in ran)
            {
                failed.Add((write, error));
            }

            ran.Clear();
            if (next < batch.Count)
            {
                _writes.Requeue(batch[next..]);
            }
        }
        finally
        {
            if (connection is not null)
            {
                if (keep && !_disposed)
                {
                    Volatile.Write(ref _writerConnection, connection);
                    if (_disposed && Interlocked.Exchange(ref _writerConnection, null) is { } late)
                    {
                        await late.DisposeAsync();
                    }
                }
                else
                {
                    await connection.DisposeAsync();
                }
            }

            StartCheckpointIfDue();
        }

        foreach (var write in ran)
        {
            write.Complete();
        }

        foreach (var (write, error) in failed)
        {
            write.Fail(error);
        }
    }

    /// <summary>The savepoint each write of a batch runs in.</summary>
    private const string Savepoint = "holdfast_write";

    /// <summary>
    /// Whether <paramref name="exception"/>, thrown by one write of a batch, ends the whole transaction rather than that
    /// write alone: a full disk, an I/O error, a damaged page or a lock held too long, or any error after which SQLite
    /// has rolled the transaction back by itself.
    /// </summary>
    private static bool EndsTransaction(SqliteConnection connection, Exception exception)
    {
        if (FindSqliteError(exception) is { } sqlite
            && (IsDamage(sqlite) || IsWriteFailure(sqlite) || sqlite.SqliteErrorCode is SQLitePCL.raw.SQLITE_BUSY or SQLitePCL.raw.SQLITE_LOCKED))
        {
            return true;
        }

        return SQLitePCL.raw.sqlite3_get_autocommit(connection.Handle) != 0;
    }

    /// <summary>
    /// What the callers of a failed write get: a lock held too long, a full disk, an I/O error or a damaged file as a
    /// <see cref="StoreUnavailableException"/> that says so; a row that could not be decoded as the damage a bounded
    /// check finds, if any; anything else as it was thrown.
    /// </summary>
    private async Task<Exception> TranslateWriteFailureAsync(Exception exception)
    {
        if (FindSqliteError(exception) is { } sqlite)
        {
            if (sqlite.SqliteErrorCode is 5 or 6)
            {
                return new StoreUnavailableException($"The database '{Path}' stayed locked by another process for longer than the busy timeout.", sqlite);
            }

            if (IsDamage(sqlite) || IsWriteFailure(sqlite))
            {
                return TranslateFailure(sqlite);
            }
        }
        else if (IsUndecodable(exception) && await FindDamageAsync(exception) is { } damage)
        {
            return damage;
        }

        return exception;
    }

    /// <summary>
    /// Copies the WAL into the database file from a connection of its own, at most every
    /// <see cref="CheckpointInterval"/> after a write, one at a time. The connections this class opens turn SQLite's
    /// automatic checkpoint off (<c>wal_autocheckpoint = 0</c>): it ran inside the commit that crossed 1,000 WAL pages,
    /// several times a second under load, and held the one writer while it copied pages and fsynced the file (the
    /// 150 ms group commits among 10 ms ones). A PASSIVE checkpoint does not block the writer or readers; what it cannot
    /// copy yet (a reader still on an older snapshot) the next one does. The last connection to close checkpoints too.
    /// </summary>
    private void StartCheckpointIfDue()
    {
        // The real clock, not the injected one: a test's frozen clock must not stop the WAL from being copied back.
        var now = TimeProvider.System.GetTimestamp();
        if (_disposed || TimeProvider.System.GetElapsedTime(Interlocked.Read(ref _lastCheckpoint), now) < CheckpointInterval
            || Interlocked.CompareExchange(ref _checkpointing, 1, 0) != 0)
        {
            return;
        }

        Interlocked.Exchange(ref _lastCheckpoint, now);
        _ = Task.Run(CheckpointAsync);
    }

    private async Task CheckpointAsync()
    {
        try
        {
            if (_disposed)
            {
                return;
            }

            // ReadWrite, never create: a database removed meanwhile is not made again, empty, by its checkpoint.
            var builder = new SqliteConnectionStringBuilder(_connectionString) { Mode = SqliteOpenMode.ReadWrite, Pooling = false };
            await using var connection = new SqliteConnection(builder.ToString());
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = string.Create(
                CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = 0; PRAGMA synchronous = {_synchronous}; PRAGMA wal_checkpoint(PASSIVE);");
            await command.ExecuteNonQueryAsync();
            Interlocked.Increment(ref _checkpoints);
        }
        catch (SqliteException)
        {
            // Busy, or the file is gone: the next write's checkpoint tries again.
        }
        finally
        {
            Interlocked.Exchange(ref _checkpointing, 0);
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on a connection for reading: an idle one kept open (with its statements prepared),
    /// or a new one, kept afterwards while fewer than <see cref="MaxIdleReaders"/> are idle.
    /// </summary>
    public async Task<T> ReadAsync<T>(Func<SqliteConnection, Task<T>> work, CancellationToken cancellationToken = default)
    {
        CachedConnection? connection = null;
        var keep = false;
        try
        {
            connection = RentReader() ?? await OpenCachedAsync(cancellationToken);
            try
            {
                var result = await work(connection);
                keep = true;
                return result;
            }
            catch (Exception ex) when (KeepsConnection(ex))
            {
                keep = true;
                throw;
            }
        }
        catch (Exception ex) when (FindSqliteError(ex) is { } sqlite && IsDamage(sqlite))
        {
            throw TranslateFailure(sqlite);
        }
        catch (Exception ex) when (IsUndecodable(ex))
        {
            if (await FindDamageAsync(ex) is { } damage)
            {
                throw damage;
            }

            throw;
        }
        finally
        {
            if (connection is not null)
            {
                await ReturnReaderAsync(connection, keep);
            }
        }
    }

    /// <summary>
    /// Whether a connection whose work threw <paramref name="exception"/> may be used again: yes for the caller's own
    /// exceptions (a conflict, a missing session, a cancellation), no after any SQLite error or an undecodable row.
    /// </summary>
    private static bool KeepsConnection(Exception exception) => FindSqliteError(exception) is null && !IsUndecodable(exception);

    private async Task<CachedConnection> OpenCachedAsync(CancellationToken cancellationToken) =>
        (CachedConnection)await OpenCoreAsync(new CachedConnection(_cachedConnectionString), cancellationToken);

    private CachedConnection? RentReader()
    {
        lock (_idleLock)
        {
            return _idleReaders.TryPop(out var connection) ? connection : null;
        }
    }

    private async ValueTask ReturnReaderAsync(CachedConnection connection, bool keep)
    {
        if (keep && !_disposed)
        {
            lock (_idleLock)
            {
                if (_idleReaders.Count < MaxIdleReaders)
                {
                    _idleReaders.Push(connection);
                    return;
                }
            }
        }

        await connection.DisposeAsync();
    }

    /// <summary>
    /// Whether <paramref name="exception"/> is what decoding a row that holds garbage throws (an unknown status name,
    /// a value of the wrong type or range): a damaged page can yield such a row without SQLite noticing, so these are
    /// checked against the file before they are reported as a bug.
    /// </summary>
    private static bool IsUndecodable(Exception exception) =>
        exception is ArgumentException or FormatException or InvalidCastException or OverflowException
            or System.Text.Json.JsonException or IndexOutOfRangeException;

    /// <summary>
    /// Runs a bounded <c>quick_check</c> after a row could not be decoded. Completes with the exception that reports
    /// the damage (also kept in <see cref="Damage"/>), or null when the file is sound and <paramref name="cause"/> is a
    /// plain bug that must surface as such.
    /// </summary>
    private async Task<StoreUnavailableException?> FindDamageAsync(Exception cause)
    {
        IReadOnlyList<string>? problems;
        try
        {
            problems = await QuickCheckAsync(DecodeFailureCheckLimit);
        }
        catch (SqliteException)
        {
            return null;
        }

        if (problems is not { Count: > 0 })
        {
            return null;
        }

        return new StoreUnavailableException(_damage ?? DamageMessage(problems[0]), cause);
    }

    /// <summary>
    /// Why writes fail right now (the disk is full, an I/O error), or null when the last write succeeded. Set by a
    /// write that failed for such a reason, cleared by the next one that commits (see <see cref="ProbeWritableAsync"/>).
    /// </summary>
    public string? WriteFailure => _writeFailure;

    /// <summary>
    /// Why the file is not to be trusted, or null: set when SQLite reported a damaged page (<c>SQLITE_CORRUPT</c>,
    /// <c>SQLITE_NOTADB</c>) on any read or write, and kept until the process restarts (after a restore).
    /// </summary>
    public string? Damage => _damage;

    /// <summary>
    /// While <see cref="WriteFailure"/> is set, tries a real write (<see cref="CheckWritableAsync"/>) to find out
    /// whether writes work again; a success clears it. Completes with the reason writes still fail, or null when they
    /// work (at once, without writing, when no write failed).
    /// </summary>
    public Task<string?> ProbeWritableAsync(CancellationToken cancellationToken = default) =>
        _writeFailure is null ? Task.FromResult<string?>(null) : CheckWritableAsync(cancellationToken);

    /// <summary>
    /// Commits a real one-page write (rewrites <c>PRAGMA user_version</c> with its own value, which changes nothing).
    /// Completes with the reason it failed (a full disk, an I/O error; also kept in <see cref="WriteFailure"/>), or
    /// null when it committed (which clears <see cref="WriteFailure"/>).
    /// </summary>
    public async Task<string?> CheckWritableAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await WriteAsync(
                async (connection, transaction) =>
                {
                    await using var read = connection.CreateCommand();
                    read.Transaction = transaction;
                    read.CommandText = "PRAGMA user_version";
                    var version = Convert.ToInt64(await read.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
                    await using var write = connection.CreateCommand();
                    write.Transaction = transaction;
                    write.CommandText = string.Create(CultureInfo.InvariantCulture, $"PRAGMA user_version = {version}");
                    await write.ExecuteNonQueryAsync(cancellationToken);
                    return 0;
                },
                cancellationToken);
            return null;
        }
        catch (StoreUnavailableException ex)
        {
            return _writeFailure ?? ex.Message;
        }
    }

    /// <summary>
    /// Runs <c>PRAGMA quick_check</c>, stopped once <paramref name="limit"/> has passed so a very large file cannot hold
    /// up start-up. Completes with the problems found (empty: the file is sound), or null when the check did not finish
    /// within the limit.
    /// </summary>
    public async Task<IReadOnlyList<string>?> QuickCheckAsync(TimeSpan limit, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        var problems = new List<string>();
        var handle = connection.Handle!;

        // SQLite asks the progress handler, also while it checks pages, whether to go on: past the deadline it stops
        // with SQLITE_INTERRUPT. (A sqlite3_interrupt from a timer is lost when it fires before the statement's first
        // step, so a short limit would not bound the check.)
        var started = _time.GetTimestamp();
        SQLitePCL.raw.sqlite3_progress_handler(
            handle,
            QuickCheckProgressSteps,
            _ => _time.GetElapsedTime(started) >= limit || cancellationToken.IsCancellationRequested ? 1 : 0,
            null);
        try
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA quick_check";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var line = reader.GetString(0);
                if (!string.Equals(line, "ok", StringComparison.Ordinal))
                {
                    problems.Add(line);
                }
            }
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == SQLitePCL.raw.SQLITE_INTERRUPT)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return null;
        }
        catch (SqliteException ex) when (IsDamage(ex))
        {
            problems.Add(ex.Message);
        }
        finally
        {
            SQLitePCL.raw.sqlite3_progress_handler(handle, 0, null, null);
        }

        if (problems.Count > 0)
        {
            _damage ??= DamageMessage(problems[0]);
        }

        return problems;
    }

    /// <summary>The SQLite error inside <paramref name="exception"/> (itself or an inner exception), if any.</summary>
    private static SqliteException? FindSqliteError(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SqliteException sqlite)
            {
                return sqlite;
            }
        }

        return null;
    }

    private static bool IsDamage(SqliteException ex) => ex.SqliteErrorCode is SQLitePCL.raw.SQLITE_CORRUPT or SQLitePCL.raw.SQLITE_NOTADB;

    private static bool IsWriteFailure(SqliteException ex) => ex.SqliteErrorCode is SQLitePCL.raw.SQLITE_FULL or SQLitePCL.raw.SQLITE_IOERR;

    /// <summary>
    /// Records a full disk, an I/O error or a damaged file in <see cref="WriteFailure"/>/<see cref="Damage"/> and turns
    /// it into a <see cref="StoreUnavailableException"/> that says so.
    /// </summary>
    private StoreUnavailableException TranslateFailure(SqliteException ex)
    {
        if (IsDamage(ex))
        {
            _damage ??= DamageMessage(ex.Message);
            return new StoreUnavailableException(_damage, ex);
        }

        if (IsWriteFailure(ex))
        {
            var cause = ex.SqliteErrorCode == SQLitePCL.raw.SQLITE_FULL ? "the disk is full" : "an I/O error";
            var failure = $"The database '{Path}' cannot be written: {cause} ({ex.Message.TrimEnd('.')}). Nothing was changed; retry once there is space.";
            _writeFailure = failure;
            return new StoreUnavailableException(failure, ex) { RetryAfter = WriteFailureRetryAfter };
        }

        return new StoreUnavailableException(ex.Message, ex);
    }

    /// <summary>How long the integrity check after an undecodable row may take before the row's error is reported as is.</summary>
    private static readonly TimeSpan DecodeFailureCheckLimit = TimeSpan.FromSeconds(2);

    /// <summary>The one-line report of a damaged file, with the way out.</summary>
    private string DamageMessage(string problem) =>
        $"The database '{Path}' is damaged ({string.Join(' ', problem.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).TrimEnd('.')}): run `holdfast check`, and `holdfast restore` a backup.";

    /// <summary>How long a client is told to wait (<c>Retry-After</c>) when a write failed for want of space.</summary>
    public static readonly TimeSpan WriteFailureRetryAfter = TimeSpan.FromSeconds(5);

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
                    catch (SqliteException ex) when (ex.SqliteErrorCode is not (5 or 6) && !IsWriteFailure(ex) && !IsDamage(ex))
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

    /// <summary>
    /// Closes the connections kept open (the writer's and the idle readers'); one in use is closed when its work ends.
    /// Connections from <see cref="OpenAsync"/> are pooled by Microsoft.Data.Sqlite and are the caller's.
    /// </summary>
    public void Dispose()
    {
        _disposed = true;

        // A background checkpoint still running is let finish (bounded): once this returns, no connection of this
        // database touches the file (a caller may copy, replace or damage it next).
        var deadline = Environment.TickCount64 + 5_000;
        var spin = default(SpinWait);
        while (Volatile.Read(ref _checkpointing) != 0 && Environment.TickCount64 < deadline)
        {
            spin.SpinOnce(sleep1Threshold: 10);
        }

        Interlocked.Exchange(ref _writerConnection, null)?.Dispose();
        List<CachedConnection> idle;
        lock (_idleLock)
        {
            idle = [.. _idleReaders];
            _idleReaders.Clear();
        }

        foreach (var connection in idle)
        {
            connection.Dispose();
        }
    }
}
