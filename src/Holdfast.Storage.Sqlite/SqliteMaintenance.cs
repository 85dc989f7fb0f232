using System.Globalization;
using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Holdfast.Storage.Sqlite;

/// <summary>Which copy a <see cref="CopyProgress"/> is about.</summary>
public enum CopyPhase
{
    /// <summary><c>SqliteMaintenance.BackupAsync</c> copying the live database to the backup file.</summary>
    Backup,

    /// <summary><see cref="SqliteMaintenance.RestoreAsync"/> keeping a copy of the database it replaces (the <c>.bak</c> file).</summary>
    KeepPrevious,

    /// <summary><see cref="SqliteMaintenance.RestoreAsync"/> copying the backup in place of the database.</summary>
    Restore,
}

/// <summary>Progress of a long copy: pages copied so far out of the total, and which copy it is.</summary>
public sealed record CopyProgress(int PagesDone, int PagesTotal, CopyPhase Phase = CopyPhase.Backup)
{
    public double Fraction => PagesTotal == 0 ? 1 : (double)PagesDone / PagesTotal;

    /// <summary>True for the last report of a copy.</summary>
    public bool IsDone => PagesDone >= PagesTotal;
}

/// <summary>
/// How a copy proceeds: pages per backup step and an optional pause between steps (the pattern SQLite's backup
/// documentation suggests to leave I/O to other writers). Internal: the default is right for the commands; tests
/// use small steps and a pause to make a copy of a few MB last long enough to overlap other writes.
/// </summary>
internal sealed record CopyPacing(int PagesPerStep, TimeSpan PauseBetweenSteps, TimeProvider? Time = null)
{
    public static readonly CopyPacing Default = new(256, TimeSpan.Zero);
}

/// <summary>What <see cref="SqliteMaintenance.CheckAsync"/> found.</summary>
public sealed record DatabaseCheck(string Path, IReadOnlyList<string> IntegrityErrors, MigrationStatus Migrations)
{
    /// <summary>True when <c>PRAGMA integrity_check</c> said ok and the schema is usable by this code (pending migrations are allowed).</summary>
    public bool IsHealthy => IntegrityErrors.Count == 0 && Migrations.Problems.Count == 0;
}

/// <summary>What <see cref="SqliteMaintenance.RestoreAsync"/> did.</summary>
public sealed record RestoreResult(string Target, string? PreviousCopy, DatabaseCheck Source);

/// <summary>
/// Backup, restore and check of the SQLite database file, safe while a service keeps writing to it. The
/// <c>holdfast backup|restore|check</c> commands are thin wrappers over these.
/// </summary>
public static class SqliteMaintenance
{
    /// <summary>
    /// Copies the live database <paramref name="databasePath"/> to <paramref name="destinationPath"/> with the SQLite
    /// online backup API, inside one read transaction, so the copy is one consistent snapshot even while other
    /// processes keep writing (they are never blocked). The copy is a single self-contained file (rollback journal),
    /// written to a temporary name, checked with <c>integrity_check</c>, then renamed into place. Completes when the
    /// copy is durable. Refuses to overwrite an existing file unless <paramref name="overwrite"/>.
    /// </summary>
    public static Task<DatabaseCheck> BackupAsync(
        string databasePath,
        string destinationPath,
        bool overwrite = false,
        IProgress<CopyProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        BackupAsync(databasePath, destinationPath, overwrite, progress, CopyPhase.Backup, CopyPacing.Default, cancellationToken);

    internal static async Task<DatabaseCheck> BackupAsync(
        string databasePath,
        string destinationPath,
        bool overwrite,
        IProgress<CopyProgress>? progress,
        CopyPhase phase,
        CopyPacing pacing,
        CancellationToken cancellationToken)
    {
        databasePath = Path.GetFullPath(databasePath);
        destinationPath = Path.GetFullPath(destinationPath);
        RequireFile(databasePath, "database");
        if (string.Equals(databasePath, destinationPath, StringComparison.Ordinal))
        {
            throw new InvalidSessionInputException("file", "The backup file must not be the database itself.");
        }

        if (File.Exists(destinationPath) && !overwrite)
        {
            throw new InvalidSessionInputException("file", $"'{destinationPath}' already exists; choose another file name (or pass --force to overwrite it).");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(destinationPath)!);
        RemoveAbandonedPartials(destinationPath);

        // Named after this process, so a later backup can tell a copy abandoned by a killed process from one in progress.
        var temporary = string.Create(CultureInfo.InvariantCulture, $"{destinationPath}{PartialInfix}{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        try
        {
            // Owner-only (0600) whatever the umask: a backup holds everything the database holds.
            HoldfastPaths.EnsureOwnerOnlyFile(temporary);
            await using (var source = await OpenAsync(databasePath, SqliteOpenMode.ReadOnly, cancellationToken))
            await using (var destination = await OpenAsync(temporary, SqliteOpenMode.ReadWriteCreate, cancellationToken))
            {
                await CopyAsync(source, destination, progress, phase, pacing, cancellationToken);

                // The copied header says WAL (like the source); make the copy one self-contained file.
                await using var journal = destination.CreateCommand();
                journal.CommandText = "PRAGMA journal_mode = DELETE;";
                await journal.ExecuteScalarAsync(cancellationToken);
            }

            var check = await CheckAsync(temporary, cancellationToken);
            if (check.IntegrityErrors.Count > 0)
            {
                throw new StoreUnavailableException($"The backup copy failed its integrity check: {check.IntegrityErrors[0]}");
            }

            File.Move(temporary, destinationPath, overwrite);
            SqliteConnection.ClearAllPools();
            return check with { Path = destinationPath };
        }
        finally
        {
            foreach (var suffix in new[] { string.Empty, "-journal", "-wal", "-shm" })
            {
                DeleteQuietly(temporary + suffix);
            }
        }
    }

    private const string PartialInfix = ".partial-";

    /// <summary>
    /// Deletes <c>&lt;destination&gt;.partial-&lt;pid&gt;-…</c> copies (and their journals) whose process is gone: what a
    /// backup killed mid-copy (SIGKILL, power loss) leaves behind. A copy whose process still runs is left alone.
    /// </summary>
    private static void RemoveAbandonedPartials(string destinationPath)
    {
        var directory = Path.GetDirectoryName(destinationPath)!;
        var prefix = Path.GetFileName(destinationPath) + PartialInfix;
        foreach (var path in Directory.EnumerateFiles(directory, prefix + "*"))
        {
            var rest = Path.GetFileName(path)[prefix.Length..];
            var dash = rest.IndexOf('-', StringComparison.Ordinal);
            if (dash > 0 && int.TryParse(rest[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && IsRunning(pid))
            {
                continue;
            }

            DeleteQuietly(path);
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// Runs <c>PRAGMA integrity_check</c> and compares the recorded migrations with this code's, reading only (the
    /// file is not changed). Completes with the findings; throws <see cref="InvalidSessionInputException"/> when
    /// there is no file.
    /// </summary>
    public static async Task<DatabaseCheck> CheckAsync(string databasePath, CancellationToken cancellationToken = default) =>
        await CheckWithCatalogAsync(databasePath, SqliteDatabase.KnownMigrations, cancellationToken);

    internal static async Task<DatabaseCheck> CheckWithCatalogAsync(string databasePath, IReadOnlyList<Migration> known, CancellationToken cancellationToken)
    {
        databasePath = Path.GetFullPath(databasePath);
        RequireFile(databasePath, "database");
        await using var connection = await OpenAsync(databasePath, SqliteOpenMode.ReadOnly, cancellationToken);
        var errors = new List<string>();
        try
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA integrity_check";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var line = reader.GetString(0);
                if (!string.Equals(line, "ok", StringComparison.Ordinal))
                {
                    errors.Add(line);
                }
            }
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is 11 or 26)
        {
            // SQLITE_CORRUPT / SQLITE_NOTADB
            errors.Add(ex.Message);
            return new DatabaseCheck(databasePath, errors, new MigrationStatus([], known, ["The file is not a readable SQLite database."]));
        }

        var applied = await SqliteDatabase.ReadAppliedMigrationsAsync(connection, cancellationToken);
        var status = MigrationPlanner.Compare("sqlite", known, applied);
        if (applied.Count == 0)
        {
            status = status with { Problems = [.. status.Problems, "The file has no schema_migrations table: it is not a Holdfast database (or an empty one)."] };
        }

        return new DatabaseCheck(databasePath, errors, status);
    }

    /// <summary>
    /// Puts backup <paramref name="backupPath"/> in place of <paramref name="databasePath"/>: verifies the backup first
    /// (integrity and migrations; a backup from an older version is fine, it is migrated on the next start), refuses
    /// with <see cref="DatabaseInUseException"/> while a server holds the database's lock (whatever
    /// <paramref name="force"/> says), and while a service uses the data directory (its lock is held or its socket
    /// answers) unless <paramref name="force"/>, keeps a consistent copy of the replaced database as
    /// <c>&lt;file&gt;.&lt;UTC time&gt;.bak</c>, then copies the backup in with the online backup API (so the WAL of
    /// the live file is handled) and checks the result. Both copies report to <paramref name="progress"/>
    /// (<see cref="CopyPhase.KeepPrevious"/>, then <see cref="CopyPhase.Restore"/>). Completes when the restored
    /// database is durable.
    /// </summary>
    public static async Task<RestoreResult> RestoreAsync(
        string backupPath,
        string databasePath,
        bool force = false,
        IProgress<CopyProgress>? progress = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        backupPath = Path.GetFullPath(backupPath);
        databasePath = Path.GetFullPath(databasePath);
        RequireFile(backupPath, "backup");
        if (string.Equals(backupPath, databasePath, StringComparison.Ordinal))
        {
            throw new InvalidSessionInputException("file", "The backup file is the database itself; nothing to restore.");
        }

        var source = await CheckAsync(backupPath, cancellationToken);
        if (source.IntegrityErrors.Count > 0)
        {
            throw new StoreSchemaException($"The backup '{backupPath}' failed its integrity check ({source.IntegrityErrors[0]}); nothing was changed.");
        }

        if (source.Migrations.Problems.Count > 0)
        {
            throw new StoreSchemaException($"The backup '{backupPath}' cannot be used by this version: {source.Migrations.Problems[0]} Nothing was changed.");
        }

        // The database lock is held by `holdfast serve` for its lifetime: a restore never replaces a file a running
        // server uses, --force or not (its sessions would go on running on the replaced file).
        var held = DataDirectoryLock.TryAcquireDatabase(databasePath, "holdfast restore", time);
        if (held is null)
        {
            var owner = DataDirectoryLock.ReadDatabaseOwner(databasePath);
            throw new DatabaseInUseException(
                databasePath,
                owner,
                $"Refusing to restore: the database '{databasePath}' is in use by {owner ?? "another process"}, and a restore never replaces a database a server holds, even with --force. " +
                $"Stop that server first ({StopHint(owner)}), then run the restore again.");
        }

        var dataDirectory = Path.GetDirectoryName(databasePath)!;
        if (!force)
        {
            var inUse = await DataDirectoryLock.ProbeAsync(dataDirectory, cancellationToken);
            if (inUse is not null)
            {
                held.Dispose();
                throw new DataDirectoryInUseException(
                    dataDirectory,
                    null,
                    $"Refusing to restore: {inUse}. Stop that server first, then run the restore again (--force restores anyway: for a server that uses another database file).");
            }
        }

        try
        {
            string? previous = null;
            if (File.Exists(databasePath))
            {
                var stamp = (time ?? TimeProvider.System).GetUtcNow().ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
                previous = $"{databasePath}.{stamp}.bak";
                await BackupAsync(databasePath, previous, overwrite: false, progress, CopyPhase.KeepPrevious, CopyPacing.Default, cancellationToken);
            }

            HoldfastPaths.EnsureOwnerOnlyFile(databasePath);
            await using (var from = await OpenAsync(backupPath, SqliteOpenMode.ReadOnly, cancellationToken))
            await using (var to = await OpenAsync(databasePath, SqliteOpenMode.ReadWriteCreate, cancellationToken))
            {
                await CopyAsync(from, to, progress, CopyPhase.Restore, CopyPacing.Default, cancellationToken);
                await using var wal = to.CreateCommand();
                wal.CommandText = "PRAGMA journal_mode = WAL; PRAGMA wal_checkpoint(TRUNCATE);";
                await wal.ExecuteNonQueryAsync(cancellationToken);
            }

            SqliteConnection.ClearAllPools();
            var restored = await CheckAsync(databasePath, cancellationToken);
            if (restored.IntegrityErrors.Count > 0)
            {
                throw new StoreUnavailableException(
                    $"The restored database failed its integrity check ({restored.IntegrityErrors[0]}); the previous database is kept at '{previous}'.");
            }

            return new RestoreResult(databasePath, previous, source);
        }
        finally
        {
            held.Dispose();
        }
    }

    /// <summary>How to stop the holder named by an owner note such as <c>holdfast serve (pid 123, since …)</c>.</summary>
    private static string StopHint(string? owner)
    {
        var at = owner?.IndexOf("(pid ", StringComparison.Ordinal) ?? -1;
        if (at >= 0)
        {
            var digits = new string(owner![(at + 5)..].TakeWhile(char.IsAsciiDigit).ToArray());
            if (digits.Length > 0)
            {
                return $"Ctrl-C in its terminal, or `kill -TERM {digits}`";
            }
        }

        return "Ctrl-C in its terminal, or SIGTERM";
    }

    private static async Task CopyAsync(
        SqliteConnection source,
        SqliteConnection destination,
        IProgress<CopyProgress>? progress,
        CopyPhase phase,
        CopyPacing pacing,
        CancellationToken cancellationToken)
    {
        // One read transaction on the source for the whole copy: every step reads the same snapshot, so writers in
        // other processes neither restart the backup nor get blocked by it (WAL).
        await using (var begin = source.CreateCommand())
        {
            begin.CommandText = "BEGIN DEFERRED; SELECT count(*) FROM sqlite_master;";
            await begin.ExecuteScalarAsync(cancellationToken);
        }

        var backup = raw.sqlite3_backup_init(destination.Handle, "main", source.Handle, "main");
        if (backup is null || backup.IsInvalid)
        {
            throw new StoreUnavailableException($"Could not start the copy: {raw.sqlite3_errmsg(destination.Handle).utf8_to_string()}");
        }

        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var rc = raw.sqlite3_backup_step(backup, pacing.PagesPerStep);
                var total = raw.sqlite3_backup_pagecount(backup);
                progress?.Report(new CopyProgress(total - raw.sqlite3_backup_remaining(backup), total, phase));
                if (rc == raw.SQLITE_DONE)
                {
                    break;
                }

                if (rc == raw.SQLITE_OK && pacing.PauseBetweenSteps > TimeSpan.Zero)
                {
                    await Task.Delay(pacing.PauseBetweenSteps, pacing.Time ?? TimeProvider.System, cancellationToken);
                }

                if (rc is raw.SQLITE_BUSY or raw.SQLITE_LOCKED)
                {
                    // The destination is busy (a restore over a file someone reads): wait a little and retry.
                    await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
                    continue;
                }

                if (rc != raw.SQLITE_OK)
                {
                    throw new StoreUnavailableException($"The copy failed: {raw.sqlite3_errstr(rc).utf8_to_string()}");
                }
            }
        }
        finally
        {
            raw.sqlite3_backup_finish(backup);
        }

        await using var end = source.CreateCommand();
        end.CommandText = "COMMIT";
        await end.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<SqliteConnection> OpenAsync(string path, SqliteOpenMode mode, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false }.ToString());
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA busy_timeout = 10000;";
            await command.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private static void RequireFile(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new InvalidSessionInputException("file", $"There is no {what} file at '{path}'.");
        }
    }

    private static void DeleteQuietly(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
