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
    /// <summary>Every Holdfast table but <c>schema_migrations</c>, parents first.</summary>
    internal static readonly string[] Tables = ["users", "api_keys", "bot_sessions", "generation_sessions", "generation_log", "session_events"];

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

    public Task BackupAsync(string destinationPath, bool overwrite, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default) =>
        throw new StoreFeatureNotSupportedException(
            "`holdfast backup` is SQLite's online backup; on PostgreSQL use `holdfast export FILE --store …` or pg_dump.");

    public async IAsyncEnumerable<StoreRecord> ExportAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
        await using (var readOnly = new NpgsqlCommand("SET TRANSACTION READ ONLY", connection, transaction))
        {
            await readOnly.ExecuteNonQueryAsync(cancellationToken);
        }

        foreach (var table in Tables)
        {
            var columns = await ReadColumnsAsync(connection, transaction, table, cancellationToken);
            var select = string.Join(", ", columns.Select(c => c.Type is "jsonb" or "json" ? $"{c.Name}::text" : c.Name));

            // Table and column names come from this class's list and the catalog, never from input.
            await using var command = new NpgsqlCommand($"SELECT {select} FROM {table} ORDER BY {OrderOf(table)}", connection, transaction);
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
        await RefuseNonEmptyAsync(connection, transaction, cancellationToken);

        var counts = Tables.ToDictionary(t => t, _ => 0L, StringComparer.Ordinal);
        var columnsByTable = new Dictionary<string, IReadOnlyList<(string Name, string Type)>>(StringComparer.Ordinal);
        foreach (var table in Tables)
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
                        $"COPY {currentTable} ({string.Join(", ", columns.Select(c => c.Name))}) FROM STDIN (FORMAT BINARY)", cancellationToken);
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

        await using (var identity = new NpgsqlCommand(
            "SELECT setval(pg_get_serial_sequence('session_events', 'id'), COALESCE((SELECT max(id) FROM session_events), 0) + 1, false)", connection, transaction))
        {
            await identity.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        progress?.Report(new StoreProgress(done, done, "done"));
        return counts;
    }

    private static string OrderOf(string table) => table switch
    {
        "users" => "name",
        "api_keys" => "id",
        "generation_sessions" => "id",
        "generation_log" => "session_id, seq",
        "bot_sessions" => "session_id",
        "session_events" => "id",
        _ => throw new ArgumentOutOfRangeException(nameof(table), table, "Not a Holdfast table."),
    };

    private static async Task RefuseNonEmptyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT (SELECT count(*) FROM generation_sessions), (SELECT count(*) FROM bot_sessions),
                   (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM users), (SELECT count(*) FROM session_events)
            """,
            connection,
            transaction);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var (generations, bots, keys, events) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));
        if (generations + bots + keys + events > 0)
        {
            throw new SessionConflictException(
                $"The target store is not empty ({generations} generation session(s), {bots} bot session(s), {keys} user/key row(s), {events} audit event(s)); " +
                "import only into a new, empty database.");
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
}
