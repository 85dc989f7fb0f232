using System.Data;
using System.Runtime.CompilerServices;
using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Npgsql;
using NpgsqlTypes;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// <see cref="IStoreAdministration"/> for PostgreSQL: migrations under the advisory lock, a read-only schema check,
/// counts, and export/import. There is no online backup here (that is SQLite's backup API): back up with
/// <c>holdfast export</c> or <c>pg_dump</c>. Export reads every table in one <c>REPEATABLE READ</c> snapshot; import
/// loads with binary <c>COPY</c> in one transaction, so a failed import leaves the database empty.
/// </summary>
internal sealed class PostgresStoreAdministration : IStoreAdministration
{
    private readonly PostgresDatabase _database;
    private readonly string _location;

    public PostgresStoreAdministration(PostgresDatabase database, string location)
    {
        _database = database;
        _location = location;
    }

    public string Provider => "postgres";

    public string Location => _location;

    public bool SupportsOnlineBackup => false;

    public Task<IReadOnlyList<Migration>> MigrateAsync(CancellationToken cancellationToken = default) => _database.MigrateAsync(cancellationToken);

    public Task<MigrationStatus> GetSchemaStatusAsync(CancellationToken cancellationToken = default) => _database.GetMigrationStatusAsync(cancellationToken);

    public Task PingAsync(CancellationToken cancellationToken = default) => _database.PingAsync(cancellationToken);

    public Task<IReadOnlyList<SessionCount>> CountSessionsAsync(CancellationToken cancellationToken = default) =>
        _database.ReadAsync<IReadOnlyList<SessionCount>>(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    """
                    SELECT 'generation', status, count(*) FROM generation_sessions GROUP BY status
                    UNION ALL
                    SELECT 'bot', status, count(*) FROM bot_sessions GROUP BY status
                    ORDER BY 1, 2
                    """,
                    connection);
                var counts = new List<SessionCount>();
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    counts.Add(new SessionCount(
                        string.Equals(reader.GetString(0), "bot", StringComparison.Ordinal) ? SessionKind.Bot : SessionKind.Generation,
                        reader.GetString(1),
                        reader.GetInt64(2)));
                }

                return counts;
            },
            cancellationToken);

    public Task<StoreBackup> BackupAsync(string destinationPath, bool overwrite, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default) =>
        throw new StoreFeatureNotSupportedException(
            "`holdfast backup` is SQLite's online backup; on PostgreSQL use `holdfast export FILE --store …` or pg_dump.");

    public Task<StoreRestore> RestoreAsync(string backupPath, bool force, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default) =>
        throw new StoreFeatureNotSupportedException(
            "`holdfast restore` is SQLite's online backup; on PostgreSQL use `holdfast import FILE --store …` into an empty database, or pg_restore.");

    /// <summary>
    /// Reads every table of the schema in one read-only transaction: quick, one row of each (within
    /// <paramref name="limit"/>, as <c>statement_timeout</c>); full, every row of each as text (which reads every heap
    /// page and de-TOASTs every value), then the migrations. A page the server reports damaged (<c>XX001</c> data
    /// corrupted, <c>XX002</c> index corrupted) is a problem; other errors are the store's usual ones.
    /// </summary>
    public async Task<StoreCheck> CheckIntegrityAsync(StoreCheckDepth depth, TimeSpan? limit = null, CancellationToken cancellationToken = default)
    {
        var method = depth == StoreCheckDepth.Full ? "every row of every table read" : "one row of every table read";
        var (integrity, problems) = await _database.ReadAsync(
            async (connection, ct) =>
            {
                var found = new List<string>();
                await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
                var timeout = limit is { } l && l > TimeSpan.Zero ? (long)Math.Ceiling(l.TotalMilliseconds) : 0;
                await using (var settings = new NpgsqlCommand("SET TRANSACTION READ ONLY; SELECT set_config('statement_timeout', @timeout, true)", connection, transaction))
                {
                    settings.Parameters.Add(Pg.Text("timeout", timeout.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    await settings.ExecuteNonQueryAsync(ct);
                }

                foreach (var (table, _) in await ReadTablesAsync(connection, transaction, ct))
                {
                    // Table names come from the catalog. A savepoint per table, so one damaged table does not hide the next.
                    var sql = depth == StoreCheckDepth.Full
                        ? $"SELECT count(*), sum(length(t::text)) FROM {Quote(table)} AS t"
                        : $"SELECT length(t::text) FROM {Quote(table)} AS t LIMIT 1";
                    await transaction.SaveAsync("check_table", ct);
                    try
                    {
                        await using var read = new NpgsqlCommand(sql, connection, transaction);
                        await read.ExecuteScalarAsync(ct);
                        await transaction.ReleaseAsync("check_table", ct);
                    }
                    catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.DataCorrupted or PostgresErrorCodes.IndexCorrupted)
                    {
                        found.Add($"{table}: {ex.MessageText}");
                        await transaction.RollbackAsync("check_table", ct);
                    }
                    catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.QueryCanceled && timeout > 0)
                    {
                        return (StoreIntegrity.Unfinished, (IReadOnlyList<string>)[]);
                    }
                }

                return (found.Count == 0 ? StoreIntegrity.Sound : StoreIntegrity.Damaged, (IReadOnlyList<string>)found);
            },
            cancellationToken);
        var migrations = depth == StoreCheckDepth.Full ? await _database.GetMigrationStatusAsync(cancellationToken) : null;
        return new StoreCheck(_location, integrity, problems, method, migrations, migrations is null ? 0 : _database.Migrations.Count);
    }

    /// <summary>Always null: PostgreSQL reports damage with each query (<see cref="CheckIntegrityAsync"/>), and a node keeps none.</summary>
    public string? KnownDamage => null;

    /// <summary>Always null: a failed write on PostgreSQL is reported by that write (retried when transient).</summary>
    public string? WriteFailure => null;

    /// <summary>Whether the server accepts writes: not a standby in recovery, and not read-only by default.</summary>
    public Task<string?> CheckWritableAsync(CancellationToken cancellationToken = default) =>
        _database.ReadAsync<string?>(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand("SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on'", connection);
                await using var reader = await command.ExecuteReaderAsync(ct);
                await reader.ReadAsync(ct);
                return reader.GetBoolean(0)
                    ? $"The database {_location} cannot be written: the server is a standby in recovery. Point the store at the primary."
                    : reader.GetBoolean(1)
                        ? $"The database {_location} cannot be written: default_transaction_read_only is on. Connect with a role or database that may write."
                        : null;
            },
            cancellationToken);

    /// <summary>Nothing to hold: every node of a cluster shares the database (leases keep sessions apart).</summary>
    public IDisposable HoldForServer(string purpose) => NothingHeld.Instance;

    public Task<long> MeasureSizeAsync(CancellationToken cancellationToken = default) =>
        _database.ReadAsync(
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand("SELECT pg_database_size(current_database())", connection);
                return (long)(await command.ExecuteScalarAsync(ct))!;
            },
            cancellationToken);

    public async IAsyncEnumerable<StoreRecord> ExportAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
        await using (var readOnly = new NpgsqlCommand("SET TRANSACTION READ ONLY", connection, transaction))
        {
            await readOnly.ExecuteNonQueryAsync(cancellationToken);
        }

        foreach (var (table, key) in await ReadTablesAsync(connection, transaction, cancellationToken))
        {
            var columns = await ReadColumnsAsync(connection, transaction, table, cancellationToken);

            // A session's output is exported whole (the tail of a running session folded in), without the fold mark
            // (migration 0015), so an export reads the same from either provider.
            var sessions = table == "generation_sessions";
            if (sessions)
            {
                columns = columns.Where(c => c.Name != "output_seq").ToList();
            }

            var select = string.Join(", ", columns.Select(c =>
                sessions && c.Name == "output" ? PostgresGenerationStore.WholeOutput
                : c.Type is "jsonb" or "json" ? $"{Quote(c.Name)}::text"
                : Quote(c.Name)));

            // Table and column names come from the catalog, never from input.
            await using var command = new NpgsqlCommand($"SELECT {select} FROM {Quote(table)} ORDER BY {string.Join(", ", key.Select(Quote))}", connection, transaction);
            await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var values = new Dictionary<string, object?>(columns.Count, StringComparer.Ordinal);
                for (var i = 0; i < columns.Count; i++)
                {
                    values[columns[i].Name] = await reader.IsDBNullAsync(i, cancellationToken) ? null : ToRecordValue(columns[i].Type, await reader.GetFieldValueAsync<object>(i, cancellationToken));
                }

                yield return new StoreRecord(table, values);
            }
        }

        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyDictionary<string, long>> ImportAsync(IAsyncEnumerable<StoreRecord> records, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var tables = (await ReadTablesAsync(connection, transaction, cancellationToken)).Select(t => t.Table).ToList();
        await RefuseNonEmptyAsync(connection, transaction, tables, cancellationToken);

        var counts = tables.ToDictionary(t => t, _ => 0L, StringComparer.Ordinal);
        var columnsByTable = new Dictionary<string, IReadOnlyList<(string Name, string Type)>>(StringComparer.Ordinal);
        foreach (var table in tables)
        {
            columnsByTable[table] = await ReadColumnsAsync(connection, transaction, table, cancellationToken);
        }

        string? currentTable = null;
        NpgsqlBinaryImporter? importer = null;
        IReadOnlyList<(string Name, string Type)> columns = [];
        long done = 0;
        try
        {
            await foreach (var record in records.WithCancellation(cancellationToken))
            {
                if (!string.Equals(record.Table, currentTable, StringComparison.Ordinal))
                {
                    if (importer is not null)
                    {
                        await importer.CompleteAsync(cancellationToken);
                        await importer.DisposeAsync();
                    }

                    if (!columnsByTable.TryGetValue(record.Table, out var tableColumns))
                    {
                        throw new InvalidSessionInputException("table", $"The export holds rows of table '{record.Table}', which this Holdfast does not have.");
                    }

                    currentTable = record.Table;
                    columns = tableColumns.Where(c => record.Values.ContainsKey(c.Name)).ToList();
                    importer = await connection.BeginBinaryImportAsync(
                        $"COPY {Quote(currentTable)} ({string.Join(", ", columns.Select(c => Quote(c.Name)))}) FROM STDIN (FORMAT BINARY)", cancellationToken);
                }

                await importer!.StartRowAsync(cancellationToken);
                foreach (var (name, type) in columns)
                {
                    var value = record.Values[name];
                    if (value is null)
                    {
                        await importer.WriteNullAsync(cancellationToken);
                    }
                    else
                    {
                        await WriteValueAsync(importer, type, value, cancellationToken);
                    }
                }

                counts[currentTable!]++;
                if (++done % 1000 == 0)
                {
                    progress?.Report(new StoreProgress(done, -1, currentTable!));
                }
            }

            if (importer is not null)
            {
                await importer.CompleteAsync(cancellationToken);
            }
        }
        finally
        {
            if (importer is not null)
            {
                await importer.DisposeAsync();
            }
        }

        // An export holds every session's whole output in `output` (a SQLite or PostgreSQL export folds the tail in),
        // so the imported text is folded up to the last event.
        await using (var folded = new NpgsqlCommand("UPDATE generation_sessions SET output_seq = last_seq WHERE output_seq <> last_seq", connection, transaction))
        {
            await folded.ExecuteNonQueryAsync(cancellationToken);
        }

        await RestartIdentitiesAsync(connection, transaction, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        progress?.Report(new StoreProgress(done, done, "done"));
        return counts;
    }

    /// <summary>
    /// Every table of the <c>public</c> schema but <c>schema_migrations</c> (read from the catalog, so a table a later
    /// migration adds is moved too), parents first (<see cref="StoreTables.ParentsFirst"/>), each with the columns of
    /// its primary key (every column when it has none), the order its rows are exported in.
    /// </summary>
    internal static async Task<IReadOnlyList<(string Table, IReadOnlyList<string> Key)>> ReadTablesAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT c.relname,
                   ARRAY(SELECT DISTINCT p.relname::text FROM pg_constraint f JOIN pg_class p ON p.oid = f.confrelid
                         WHERE f.conrelid = c.oid AND f.contype = 'f'),
                   ARRAY(SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                         WHERE i.indrelid = c.oid AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)),
                   ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            """,
            connection,
            transaction);
        var parents = new Dictionary<string, IReadOnlyCollection<string>>(StringComparer.Ordinal);
        var keys = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var table = reader.GetString(0);
                parents[table] = await reader.GetFieldValueAsync<string[]>(1, cancellationToken);
                var key = await reader.GetFieldValueAsync<string[]>(2, cancellationToken);
                var all = await reader.GetFieldValueAsync<string[]>(3, cancellationToken);
                keys[table] = key.Length > 0 ? key : all;
            }
        }

        return [.. StoreTables.ParentsFirst(parents).Select(t => (t, keys[t]))];
    }

    /// <summary>A catalog name as an identifier (double quotes doubled).</summary>
    private static string Quote(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>Every identity (or serial) column continues after the largest imported value, so new rows get new ids.</summary>
    private static async Task RestartIdentitiesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        var columns = new List<(string Table, string Column)>();
        await using (var find = new NpgsqlCommand(
            """
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = 'public' AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')
            """,
            connection,
            transaction))
        await using (var reader = await find.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                columns.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        foreach (var (table, column) in columns)
        {
            // Names come from the catalog; pg_get_serial_sequence takes them as values.
            await using var restart = new NpgsqlCommand(
                $"SELECT setval(pg_get_serial_sequence(@table, @column), COALESCE((SELECT max({Quote(column)}) FROM {Quote(table)}), 0) + 1, false)",
                connection,
                transaction);
            restart.Parameters.Add(Pg.Text("table", Quote(table)));
            restart.Parameters.Add(Pg.Text("column", column));
            await restart.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    private static async Task RefuseNonEmptyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<string> tables, CancellationToken cancellationToken)
    {
        var nonEmpty = new List<string>();
        foreach (var table in tables)
        {
            // Table names come from the catalog.
            await using var command = new NpgsqlCommand($"SELECT count(*) FROM {Quote(table)}", connection, transaction);
            var rows = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
            if (rows > 0)
            {
                nonEmpty.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{rows} row(s) in {table}"));
            }
        }

        if (nonEmpty.Count > 0)
        {
            throw new SessionConflictException(
                $"The target store is not empty ({string.Join(", ", nonEmpty)}); import only into a new, empty database. Nothing was imported.");
        }
    }

    private static async Task<IReadOnlyList<(string Name, string Type)>> ReadColumnsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string table, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = @table ORDER BY ordinal_position",
            connection,
            transaction);
        command.Parameters.Add(Pg.Text("table", table));
        var columns = new List<(string, string)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            columns.Add((reader.GetString(0), reader.GetString(1)));
        }

        return columns;
    }

    /// <summary>A column value as an export carries it: text, long, double, bytes, UTC time.</summary>
    private static object ToRecordValue(string type, object value) => value switch
    {
        bool b => b ? 1L : 0L,
        int i => (long)i,
        short s => (long)s,
        float f => (double)f,
        DateTime dt => new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Utc)),
        _ when type is "jsonb" or "json" => value.ToString()!,
        _ => value,
    };

    private static Task WriteValueAsync(NpgsqlBinaryImporter importer, string type, object value, CancellationToken cancellationToken) => type switch
    {
        "text" => importer.WriteAsync(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!, NpgsqlDbType.Text, cancellationToken),
        "jsonb" => importer.WriteAsync(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!, NpgsqlDbType.Jsonb, cancellationToken),
        "bigint" => importer.WriteAsync(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture), NpgsqlDbType.Bigint, cancellationToken),
        "integer" => importer.WriteAsync(Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture), NpgsqlDbType.Integer, cancellationToken),
        "boolean" => importer.WriteAsync(value is bool b ? b : Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) != 0, NpgsqlDbType.Boolean, cancellationToken),
        "bytea" => importer.WriteAsync((byte[])value, NpgsqlDbType.Bytea, cancellationToken),
        "timestamp with time zone" => importer.WriteAsync(ToTime(value), NpgsqlDbType.TimestampTz, cancellationToken),
        _ => throw new InvalidSessionInputException("value", $"Column type '{type}' cannot be imported."),
    };

    private static DateTimeOffset ToTime(object value) => value switch
    {
        DateTimeOffset dto => dto.ToUniversalTime(),
        DateTime dt => new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Utc)),
        string s => DateTimeOffset.Parse(s, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal).ToUniversalTime(),
        _ => throw new InvalidSessionInputException("value", $"'{value}' is not a time."),
    };

    private sealed class NothingHeld : IDisposable
    {
        public static readonly NothingHeld Instance = new();

        public void Dispose()
        {
        }
    }
}
