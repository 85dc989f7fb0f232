using System.Globalization;
using System.Runtime.CompilerServices;
using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary><see cref="IStoreAdministration"/> of the embedded SQLite file.</summary>
internal sealed class SqliteStoreAdministration(SqliteDatabase database) : IStoreAdministration
{
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

    public async Task<StoreBackup> BackupAsync(string destinationPath, bool overwrite, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var check = await SqliteMaintenance.BackupAsync(database.Path, destinationPath, overwrite, Pages(progress), cancellationToken);
        return new StoreBackup(database.Path, check.Path, new FileInfo(check.Path).Length, check.Migrations.Applied.Count);
    }

    public async Task<StoreRestore> RestoreAsync(string backupPath, bool force, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var result = await SqliteMaintenance.RestoreAsync(backupPath, database.Path, force, Pages(progress), TimeProvider.System, cancellationToken);
        return new StoreRestore(result.Source.Path, result.Target, result.PreviousCopy, result.Source.Migrations.Pending.Count);
    }

    /// <summary>
    /// Full: <c>PRAGMA integrity_check</c> on the file, read-only, with its migrations (a missing file is refused with a
    /// message saying so). Quick: <c>PRAGMA quick_check</c>, interrupted after <paramref name="limit"/>; a missing or
    /// empty file is <see cref="StoreIntegrity.NotChecked"/>.
    /// </summary>
    public async Task<StoreCheck> CheckIntegrityAsync(StoreCheckDepth depth, TimeSpan? limit = null, CancellationToken cancellationToken = default)
    {
        if (depth == StoreCheckDepth.Full)
        {
            var full = await SqliteMaintenance.CheckAsync(database.Path, cancellationToken);
            return new StoreCheck(
                full.Path, full.IntegrityErrors.Count == 0 ? StoreIntegrity.Sound : StoreIntegrity.Damaged, full.IntegrityErrors, "PRAGMA integrity_check", full.Migrations, database.Migrations.Count);
        }

        const string Quick = "PRAGMA quick_check";
        if (!File.Exists(database.Path) || new FileInfo(database.Path).Length == 0)
        {
            return new StoreCheck(database.Path, StoreIntegrity.NotChecked, [], Quick, null);
        }

        IReadOnlyList<string>? problems;
        try
        {
            problems = await database.QuickCheckAsync(limit ?? Timeout.InfiniteTimeSpan, cancellationToken);
        }
        catch (StoreUnavailableException ex)
        {
            // The file cannot even be opened for the check (not a database, a damaged header).
            problems = [ex.Message];
        }

        return problems is null
            ? new StoreCheck(database.Path, StoreIntegrity.Unfinished, [], Quick, null)
            : new StoreCheck(database.Path, problems.Count == 0 ? StoreIntegrity.Sound : StoreIntegrity.Damaged, problems, Quick, null);
    }

    public string? KnownDamage => database.Damage;

    public string? WriteFailure => database.WriteFailure;

    public Task<string?> CheckWritableAsync(CancellationToken cancellationToken = default) => database.CheckWritableAsync(cancellationToken);

    /// <summary>Locks the database file (<c>&lt;file&gt;.lock</c>): two servers with different data directories cannot share one <c>Storage:SqliteFile</c>.</summary>
    public IDisposable HoldForServer(string purpose) => DataDirectoryLock.AcquireDatabase(database.Path, purpose);

    public Task<long> MeasureSizeAsync(CancellationToken cancellationToken = default)
    {
        long size = 0;
        foreach (var file in new[] { database.Path, database.Path + "-wal" })
        {
            if (File.Exists(file))
            {
                size += new FileInfo(file).Length;
            }
        }

        return Task.FromResult(size);
    }

    /// <summary>A copy's page progress as the port's progress, labelled for people by which copy it is; reported synchronously, in order.</summary>
    private static PageProgress? Pages(IProgress<StoreProgress>? progress) => progress is null ? null : new PageProgress(progress);

    public async IAsyncEnumerable<StoreRecord> ExportAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);

        // One read transaction: every table is read from the same snapshot while writers go on (WAL).
        await using (var begin = connection.CreateCommand())
        {
            begin.CommandText = "BEGIN DEFERRED";
            await begin.ExecuteNonQueryAsync(cancellationToken);
        }

        try
        {
            foreach (var (table, key) in await ReadTablesAsync(connection, null, cancellationToken))
            {
                await using var command = connection.CreateCommand();

                // Table and column names come from the schema itself (sqlite_master), never from input. A session's
                // output is exported whole (the tail of a running session folded in), without SQLite's fold mark.
                var sessions = table == "generation_sessions";
                command.CommandText = "SELECT *"
                    + (sessions ? ", " + SqliteGenerationStore.WholeOutput + " AS whole_output, " + SqliteGenerationStore.LiveLastSeq + " AS live_last_seq, "
                        + SqliteGenerationStore.LiveOutputTokens + " AS live_output_tokens, " + SqliteGenerationStore.LiveLeaseExpires + " AS live_lease_expires_at" : "")
                    + " FROM \"" + table + "\" ORDER BY " + string.Join(", ", key.Select(c => "\"" + c + "\""));
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    var values = new Dictionary<string, object?>(reader.FieldCount, StringComparer.Ordinal);
                    for (var i = 0; i < reader.FieldCount; i++)
                    {
                        var name = reader.GetName(i);
                        var value = await reader.IsDBNullAsync(i, cancellationToken) ? null : reader.GetValue(i);

                        // Timestamps are stored as ISO-8601 text; the port hands them over as DateTimeOffset.
                        values[name] = value is string text && name.EndsWith("_at", StringComparison.Ordinal) ? SqliteTime.Parse(text) : value;
                    }

                    if (sessions)
                    {
                        // A running session's counters are in its progress row (SQLite only, not moved).
                        values["output"] = values["whole_output"];
                        values["last_seq"] = values["live_last_seq"];
                        values["output_tokens"] = values["live_output_tokens"];
                        values["lease_expires_at"] = values["live_lease_expires_at"];
                        values.Remove("whole_output");
                        values.Remove("live_last_seq");
                        values.Remove("live_output_tokens");
                        values.Remove("live_lease_expires_at");
                        values.Remove("output_seq");
                    }

                    yield return new StoreRecord(table, values);
                }
            }
        }
        finally
        {
            // End the read transaction whatever happened, so the pooled connection goes back clean.
            await using var end = connection.CreateCommand();
            end.CommandText = "ROLLBACK";
            await end.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// Loads <paramref name="records"/> in one transaction (all or nothing), after checking that the store holds no
    /// user, key, session or audit event. Table and column names are checked against the schema before use.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, long>> ImportAsync(
        IAsyncEnumerable<StoreRecord> records, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        return await database.WriteAsync<IReadOnlyDictionary<string, long>>(
            async (connection, transaction) =>
            {
                var tables = (await ReadTablesAsync(connection, transaction, cancellationToken)).Select(t => t.Table).ToList();
                foreach (var table in tables)
                {
                    await using var any = connection.CreateCommand();
                    any.Transaction = transaction;

                    // The table name comes from the schema itself (sqlite_master), never from input.
                    any.CommandText = "SELECT EXISTS (SELECT 1 FROM \"" + table + "\")";
                    if (Convert.ToInt64(await any.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture) != 0)
                    {
                        throw new SessionConflictException(
                            $"The target store '{database.Path}' is not empty (table {table} has rows); import only into a new, empty store. Nothing was imported.");
                    }
                }

                var columns = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
                foreach (var table in tables)
                {
                    columns[table] = await ReadColumnsAsync(connection, transaction, table, cancellationToken);
                }

                var counts = tables.ToDictionary(t => t, _ => 0L, StringComparer.Ordinal);
                long done = 0;
                await foreach (var record in records.WithCancellation(cancellationToken))
                {
                    if (!columns.TryGetValue(record.Table, out var known))
                    {
                        throw new InvalidSessionInputException("file", $"The import names table '{record.Table}', which a Holdfast store does not have. Nothing was imported.");
                    }

                    var names = record.Values.Keys.ToList();
                    if (names.FirstOrDefault(n => !known.Contains(n)) is { } unknown)
                    {
                        throw new InvalidSessionInputException("file", $"The import names column '{unknown}' of table '{record.Table}', which this schema does not have. Nothing was imported.");
                    }

                    await using var insert = connection.CreateCommand();
                    insert.Transaction = transaction;

                    // Table and column names were checked against the schema above; every value is a parameter.
                    insert.CommandText = $"INSERT INTO {record.Table} ({string.Join(", ", names.Select(n => "\"" + n + "\""))}) VALUES ({string.Join(", ", names.Select((_, i) => "$p" + i.ToString(CultureInfo.InvariantCulture)))})";
                    for (var i = 0; i < names.Count; i++)
                    {
                        insert.Parameters.AddWithValue("$p" + i.ToString(CultureInfo.InvariantCulture), ToSqlite(record.Values[names[i]]));
                    }

                    await insert.ExecuteNonQueryAsync(cancellationToken);
                    counts[record.Table]++;
                    if (++done % 1000 == 0)
                    {
                        progress?.Report(new StoreProgress(done, done, record.Table));
                    }
                }

                // An export holds every session's whole output in `output` (PostgreSQL's always does; a SQLite export
                // folds the tail in), so the imported text is folded up to the last event.
                await using (var folded = connection.CreateCommand())
                {
                    folded.Transaction = transaction;
                    folded.CommandText = "UPDATE generation_sessions SET output_seq = last_seq WHERE output_seq <> last_seq";
                    await folded.ExecuteNonQueryAsync(cancellationToken);
                }

                // Every running session has its progress row (migration 0016), made from the imported row.
                await using (var progressRows = connection.CreateCommand())
                {
                    progressRows.Transaction = transaction;
                    progressRows.CommandText = """
                        INSERT INTO generation_progress (session_id, lease_holder, lease_expires_at, lease_epoch, last_seq, output_tokens, output_seq)
                        SELECT id, lease_holder, lease_expires_at, lease_epoch, last_seq, output_tokens, output_seq FROM generation_sessions WHERE status = 'running'
                        """;
                    await progressRows.ExecuteNonQueryAsync(cancellationToken);
                }

                progress?.Report(new StoreProgress(done, done, "done"));
                return counts;
            },
            cancellationToken);
    }

    private static object ToSqlite(object? value) => value switch
    {
        null => DBNull.Value,
        DateTimeOffset time => SqliteTime.Format(time),
        DateTime time => SqliteTime.Format(new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc))),
        bool flag => flag ? 1L : 0L,
        int number => (long)number,
        _ => value,
    };

    /// <summary>
    /// Every table of the schema but <c>schema_migrations</c> and <c>generation_progress</c> (a running session's
    /// counters, SQLite's own: an export takes them into the session's row, an import makes them from it) (read from <c>sqlite_master</c>, so a table a later
    /// migration adds is moved too), parents first (<see cref="StoreTables.ParentsFirst"/>), each with the columns of its
    /// primary key (every column when it has none), the order its rows are exported in.
    /// </summary>
    internal static async Task<IReadOnlyList<(string Table, IReadOnlyList<string> Key)>> ReadTablesAsync(
        SqliteConnection connection, SqliteTransaction? transaction, CancellationToken cancellationToken)
    {
        var parents = new Dictionary<string, IReadOnlyCollection<string>>(StringComparer.Ordinal);
        var keys = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            SELECT m.name,
                   (SELECT json_group_array("table") FROM pragma_foreign_key_list(m.name)),
                   (SELECT json_group_array(name) FROM (SELECT name FROM pragma_table_info(m.name) WHERE pk > 0 ORDER BY pk)),
                   (SELECT json_group_array(name) FROM (SELECT name FROM pragma_table_info(m.name) ORDER BY cid))
            FROM sqlite_master AS m
            WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' AND m.name <> 'generation_progress'
            """;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var table = reader.GetString(0);
            parents[table] = System.Text.Json.JsonSerializer.Deserialize<string[]>(reader.GetString(1))!;
            var key = System.Text.Json.JsonSerializer.Deserialize<string[]>(reader.GetString(2))!;
            keys[table] = key.Length > 0 ? key : System.Text.Json.JsonSerializer.Deserialize<string[]>(reader.GetString(3))!;
        }

        return [.. StoreTables.ParentsFirst(parents).Select(t => (t, keys[t]))];
    }

    private static async Task<HashSet<string>> ReadColumnsAsync(SqliteConnection connection, SqliteTransaction transaction, string table, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT name FROM pragma_table_info($table)";
        command.Parameters.AddWithValue("$table", table);
        var names = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

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

    private sealed class PageProgress(IProgress<StoreProgress> target) : IProgress<CopyProgress>
    {
        public void Report(CopyProgress value) => target.Report(new StoreProgress(value.PagesDone, value.PagesTotal, value.Phase switch
        {
            CopyPhase.KeepPrevious => "restore: keeping the replaced database",
            CopyPhase.Restore => "restore",
            _ => "backup",
        }));
    }
}
