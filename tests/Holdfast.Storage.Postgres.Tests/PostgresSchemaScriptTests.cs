using System.Diagnostics;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Holdfast.Storage.Postgres.Tests;

/// <summary>
/// The printed script (<c>holdfast migrate --print --provider postgres</c>) as a Supabase user runs it, through
/// <c>psql</c>; row-level security; and parity of the PostgreSQL schema with SQLite's.
/// </summary>
public sealed class PostgresSchemaScriptTests
{
    [Fact(Timeout = 120_000)]
    public async Task PrintedScript_RunTwiceThroughPsqlOnEmptyDatabase_NoErrorAndHoldfastFindsItCurrent()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        using var temp = new TempDirectory();
        var script = temp.File("holdfast.sql");
        await File.WriteAllTextAsync(script, PostgresSchemaScript.Build());

        await RunPsqlAsync(db, script);
        await RunPsqlAsync(db, script);

        await using var database = new PostgresDatabase(db.Uri);
        var status = await database.GetMigrationStatusAsync();
        status.IsCurrent.ShouldBeTrue(string.Join("; ", status.Problems));
        (await database.MigrateAsync()).ShouldBeEmpty();
        ((long)(await db.ScalarAsync("SELECT count(*) FROM schema_migrations"))!).ShouldBe(PostgresMigrations.Load().Count);
    }

    [Fact(Timeout = 120_000)]
    public async Task CreateBotSessionsScript_ThenMigrations_Apply()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        await RunPsqlAsync(db, RepositoryRoot.File("migrations", "postgres", "create_bot_sessions.sql"));
        await RunPsqlAsync(db, RepositoryRoot.File("migrations", "postgres", "create_bot_sessions.sql"));
        // The design record's own insert works as written.
        await db.ScalarAsync("INSERT INTO bot_sessions (session_id, status, qr_data) VALUES ('bot1', 'active', 'qr')");

        await using var database = new PostgresDatabase(db.Uri);
        (await database.MigrateAsync()).Count.ShouldBe(PostgresMigrations.Load().Count);
        (await db.ScalarAsync("SELECT qr_data FROM bot_sessions WHERE session_id = 'bot1'")).ShouldBe("qr");
    }

    [Fact(Timeout = 120_000)]
    public async Task EveryTable_RowLevelSecurityOnWithoutPolicy_AnonRoleSeesNothing()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        await using (var database = new PostgresDatabase(db.Uri))
        {
            await database.MigrateAsync();
        }

        var withoutRls = await db.ScalarAsync("""
            SELECT coalesce(string_agg(relname, ','), '') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relrowsecurity
            """);
        withoutRls.ShouldBe(string.Empty);
        ((long)(await db.ScalarAsync("SELECT count(*) FROM pg_policies WHERE schemaname = 'public'"))!).ShouldBe(0);

        // As on Supabase: the anon role is granted the tables, and still reads nothing and writes nothing.
        var role = "anon_" + db.Name[^8..];
        await db.ScalarAsync("INSERT INTO bot_sessions (session_id, status) VALUES ('secret-bot', 'active')");
        await db.ScalarAsync($"CREATE ROLE {role} NOLOGIN; GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role};");
        try
        {
            (await db.ScalarAsync($"SET ROLE {role}; SELECT count(*) FROM bot_sessions")).ShouldBe(0L);
            var ex = await Should.ThrowAsync<PostgresException>(() => db.ScalarAsync($"SET ROLE {role}; INSERT INTO bot_sessions (session_id, status) VALUES ('evil', 'active')"));
            ex.MessageText.ShouldContain("row-level security");
        }
        finally
        {
            await db.ScalarAsync($"REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}; DROP ROLE {role};");
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task Schema_SameTablesAndColumnsAsSqlite()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        await using (var database = new PostgresDatabase(db.Uri))
        {
            await database.MigrateAsync();
        }

        using var temp = new TempDirectory();
        using (var sqlite = new SqliteDatabase(temp.File("holdfast.db")))
        {
            await sqlite.MigrateAsync();
        }

        var sqliteColumns = new SortedSet<string>(StringComparer.Ordinal);
        await using (var connection = new SqliteConnection($"Data Source={temp.File("holdfast.db")};Pooling=false"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = """
                SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
                WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
                """;
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                sqliteColumns.Add($"{reader.GetString(0)}.{reader.GetString(1)}");
            }
        }

        var postgresColumns = new SortedSet<string>(StringComparer.Ordinal);
        await using (var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(db.ConnectionString) { Pooling = false }.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'", connection);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                postgresColumns.Add($"{reader.GetString(0)}.{reader.GetString(1)}");
            }
        }

        // The fold mark of the materialized output (SQLite's migration 0014, PostgreSQL's 0015) is in both: how far
        // `output` holds the text. Exports fold the tail in and leave the column out, so moves never carry it.
        sqliteColumns.ShouldContain("generation_sessions.output_seq");
        postgresColumns.ShouldContain("generation_sessions.output_seq");

        // A running session's progress row (SQLite's migration 0016): SQLite's own, never moved (exports take its
        // counters into the session's row).
        sqliteColumns.ShouldContain("generation_progress.last_seq");
        sqliteColumns.RemoveWhere(c => c.StartsWith("generation_progress.", StringComparison.Ordinal));
        postgresColumns.Except(sqliteColumns).ShouldBeEmpty("in PostgreSQL only");
        sqliteColumns.Except(postgresColumns).ShouldBeEmpty("in SQLite only");
        sqliteColumns.ShouldContain("schema_migrations.checksum");
    }

    private static async Task RunPsqlAsync(TestDatabase db, string file)
    {
        var psql = new[] { "/usr/lib/postgresql/15/bin/psql", "/usr/bin/psql" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("psql is not installed (scripts/test-deps/postgres.sh installs PostgreSQL 15 with it).");
        var start = new ProcessStartInfo(psql)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.Uri, "-f", file })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var errors = await stderr;
        await stdout;
        process.ExitCode.ShouldBe(0, errors);
        errors.ShouldNotContain("ERROR");
    }
}
