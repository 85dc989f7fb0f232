using System.Text.Json;
using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Cli.Tests;

/// <summary><c>holdfast migrate | backup | restore | check</c> run as real processes: exit codes and one-line reasons.</summary>
public sealed class MaintenanceCommandTests : IDisposable
{
    private readonly TempDirectory _data = new("holdfast-maint");
    private readonly TempDirectory _backups = new("holdfast-maint-backups");

    private Dictionary<string, string?> Environment => new(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = _data.Path };

    public void Dispose()
    {
        _data.Dispose();
        _backups.Dispose();
    }

    [Fact(Timeout = 180_000)]
    public async Task MaintenanceCommands_WithoutService_Exit0OnSuccessAndOneLineReasonOnFailure()
    {
        var noDatabase = await CliProcess.RunAsync(["check"], Environment);
        noDatabase.ExitCode.ShouldBe(1, noDatabase.ToString());
        OneLine(noDatabase.Stderr).ShouldContain("no database file");

        var migrate = await CliProcess.RunAsync(["migrate"], Environment);
        migrate.ExitCode.ShouldBe(0, migrate.ToString());
        migrate.Stdout.ShouldContain("0001_foundation");

        var check = await CliProcess.RunAsync(["check"], Environment);
        check.ExitCode.ShouldBe(0, check.ToString());
        check.Stdout.ShouldContain("integrity:  ok");

        var backupFile = _backups.File("one.db");
        var backup = await CliProcess.RunAsync(["backup", backupFile], Environment);
        backup.ExitCode.ShouldBe(0, backup.ToString());
        File.Exists(backupFile).ShouldBeTrue();

        var again = await CliProcess.RunAsync(["backup", backupFile], Environment);
        again.ExitCode.ShouldNotBe(0);
        OneLine(again.Stderr).ShouldContain("already exists");

        var restore = await CliProcess.RunAsync(["restore", backupFile], Environment);
        restore.ExitCode.ShouldBe(0, restore.ToString());
        Directory.GetFiles(_data.Path, "holdfast.db.*.bak").ShouldHaveSingleItem();

        var missing = await CliProcess.RunAsync(["restore", _backups.File("missing.db")], Environment);
        missing.ExitCode.ShouldNotBe(0);
        OneLine(missing.Stderr).ShouldContain("missing.db");

        await ExecuteAsync(_data.File("holdfast.db"), "UPDATE schema_migrations SET checksum = 'deadbeefdeadbeefdeadbeef' WHERE version = 1");

        var tampered = await CliProcess.RunAsync(["check"], Environment);
        tampered.ExitCode.ShouldBe(1, tampered.ToString());
        OneLine(tampered.Stderr).ShouldContain("checksum");
    }

    [Fact(Timeout = 60_000)]
    public async Task MigratePrint_Sqlite_Exit0WithEveryMigrationIdAndItsSqlAndNoDatabase()
    {
        var printed = await CliProcess.RunAsync(["migrate", "--print"], Environment);

        printed.ExitCode.ShouldBe(0, printed.ToString());
        var stdout = printed.Stdout.Replace("\r\n", "\n", StringComparison.Ordinal);
        var migrations = SqliteDatabase.KnownMigrations;
        migrations.Count.ShouldBeGreaterThanOrEqualTo(3);
        foreach (var migration in migrations)
        {
            stdout.ShouldContain($"-- {migration.Id} (sha256 {migration.Checksum})");
            stdout.ShouldContain(migration.Sql);
        }

        printed.Stderr.ShouldBeEmpty();
        Directory.GetFiles(_data.Path).ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task MigratePrint_ProviderPostgres_ContainsTheBotSessionsTable()
    {
        var printed = await CliProcess.RunAsync(["migrate", "--print", "--provider", "postgres"], Environment);

        printed.ExitCode.ShouldBe(0, printed.ToString());
        printed.Stdout.ShouldContain("CREATE TABLE IF NOT EXISTS bot_sessions");
        printed.Stdout.ShouldContain("session_id        text PRIMARY KEY");
        printed.Stdout.ShouldContain("ENABLE ROW LEVEL SECURITY");
        foreach (var file in Directory.GetFiles(Path.Combine(CliProcess.RepositoryRoot, "migrations", "postgres"), "????_*.sql"))
        {
            var id = Path.GetFileNameWithoutExtension(file);
            printed.Stdout.ShouldContain($"-- {id} (sha256 ");
            printed.Stdout.ShouldContain($"'{id[5..]}'");
        }

        printed.Stdout.TrimEnd().ShouldEndWith("COMMIT;");
    }

    [Fact(Timeout = 120_000)]
    public async Task Migrate_TamperedChecksumOrDatabaseNewerThanCode_ExitNonZeroWithOneLineNamingTheCause()
    {
        using var newer = new TempDirectory("holdfast-maint-newer");
        (await CliProcess.RunAsync(["migrate"], Environment)).ExitCode.ShouldBe(0);
        (await CliProcess.RunAsync(["migrate"], new Dictionary<string, string?> { ["HOLDFAST_DATA"] = newer.Path })).ExitCode.ShouldBe(0);
        await ExecuteAsync(_data.File("holdfast.db"), "UPDATE schema_migrations SET checksum = 'deadbeefdeadbeefdeadbeef' WHERE version = 1");
        await ExecuteAsync(
            newer.File("holdfast.db"),
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (9999, 'from_the_future', 'abc', '2030-01-01T00:00:00.000Z')");

        var tampered = await CliProcess.RunAsync(["migrate"], Environment);
        var fromTheFuture = await CliProcess.RunAsync(["migrate"], new Dictionary<string, string?> { ["HOLDFAST_DATA"] = newer.Path });

        tampered.ExitCode.ShouldNotBe(0, tampered.ToString());
        var tamperedLine = OneLine(tampered.Stderr);
        tamperedLine.ShouldStartWith("holdfast: ");
        tamperedLine.ShouldContain("Migration 0001_foundation was applied with checksum deadbeefdead");
        fromTheFuture.ExitCode.ShouldNotBe(0, fromTheFuture.ToString());
        var newerLine = OneLine(fromTheFuture.Stderr);
        newerLine.ShouldStartWith("holdfast: ");
        newerLine.ShouldContain("9999_from_the_future");
        newerLine.ShouldContain("newer than the code");
    }

    [Fact(Timeout = 120_000)]
    public async Task BackupAndCheck_StorageSqliteFileSet_UseThatFileNotTheDefaultOne()
    {
        // A decoy at the default name, and the configured file next to it.
        (await CliProcess.RunAsync(["migrate"], Environment)).ExitCode.ShouldBe(0);
        await StartBotAsync(_data.File("holdfast.db"), "decoy");
        var custom = Environment;
        custom["Storage__SqliteFile"] = "custom.db";
        var migrate = await CliProcess.RunAsync(["migrate"], custom);
        migrate.ExitCode.ShouldBe(0, migrate.ToString());
        await StartBotAsync(_data.File("custom.db"), "custom-bot");
        var backupFile = _backups.File("custom-backup.db");

        var check = await CliProcess.RunAsync(["check"], custom);
        var json = await CliProcess.RunAsync(["check", "--json"], custom);
        var backup = await CliProcess.RunAsync(["backup", backupFile], custom);

        migrate.Stdout.ShouldContain(_data.File("custom.db"));
        check.ExitCode.ShouldBe(0, check.ToString());
        check.Stdout.ShouldContain($"database:   {_data.File("custom.db")}");
        using (var report = JsonDocument.Parse(json.Stdout))
        {
            report.RootElement.GetProperty("path").GetString().ShouldBe(_data.File("custom.db"));
        }

        backup.ExitCode.ShouldBe(0, backup.ToString());
        backup.Stdout.ShouldContain($"Backed up {_data.File("custom.db")} to {backupFile}");
        (await BotIdsAsync(backupFile)).ShouldBe(["custom-bot"]);

        // Storage__DataDirectory is more specific than HOLDFAST_DATA, for these commands as for serve.
        using var elsewhere = new TempDirectory("holdfast-maint-elsewhere");
        var both = Environment;
        both["Storage__DataDirectory"] = elsewhere.Path;
        var migrateElsewhere = await CliProcess.RunAsync(["migrate"], both);
        migrateElsewhere.ExitCode.ShouldBe(0, migrateElsewhere.ToString());
        File.Exists(elsewhere.File("holdfast.db")).ShouldBeTrue();
    }

    [Fact(Timeout = 180_000)]
    public async Task Backup_WhileServeRunsOnAConfiguredFile_CopiesTheFileServeUses()
    {
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal) { ["Storage__SqliteFile"] = "served.db" };
        await using var server = await ServerProcess.StartNewAsync(settings: settings);
        var environment = server.Environment;
        environment["Storage__SqliteFile"] = "served.db";
        var started = await CliProcess.RunAsync(["bot", "start", "served-bot", "--type", "bridge"], environment);
        started.ExitCode.ShouldBe(0, started.ToString());
        var backupFile = _backups.File("served-backup.db");

        var backup = await CliProcess.RunAsync(["backup", backupFile], environment);

        backup.ExitCode.ShouldBe(0, backup.ToString());
        File.Exists(server.Data.File("holdfast.db")).ShouldBeFalse();
        (await BotIdsAsync(backupFile)).ShouldBe(["served-bot"]);
    }

    [Fact(Timeout = 120_000)]
    public async Task CheckJson_HealthyThenTampered_ReportsPathIntegrityMigrationsAndOk()
    {
        (await CliProcess.RunAsync(["migrate"], Environment)).ExitCode.ShouldBe(0);
        var expected = SqliteDatabase.KnownMigrations.Count;

        var healthy = await CliProcess.RunAsync(["check", "--json"], Environment);
        await ExecuteAsync(_data.File("holdfast.db"), "UPDATE schema_migrations SET checksum = 'deadbeefdeadbeefdeadbeef' WHERE version = 1");
        var tampered = await CliProcess.RunAsync(["check", "--json"], Environment);

        healthy.ExitCode.ShouldBe(0, healthy.ToString());
        healthy.Stderr.ShouldBeEmpty();
        using (var report = JsonDocument.Parse(healthy.Stdout))
        {
            var root = report.RootElement;
            root.GetProperty("path").GetString().ShouldBe(_data.File("holdfast.db"));
            root.GetProperty("integrity").GetString().ShouldBe("ok");
            root.GetProperty("integrity_errors").GetArrayLength().ShouldBe(0);
            root.GetProperty("migrations").GetProperty("applied").GetInt32().ShouldBe(expected);
            root.GetProperty("migrations").GetProperty("expected").GetInt32().ShouldBe(expected);
            root.GetProperty("migrations").GetProperty("pending").GetArrayLength().ShouldBe(0);
            root.GetProperty("migrations").GetProperty("problems").GetArrayLength().ShouldBe(0);
            root.GetProperty("ok").GetBoolean().ShouldBeTrue();
        }

        tampered.ExitCode.ShouldBe(1, tampered.ToString());
        OneLine(tampered.Stderr).ShouldContain("checksum");
        using (var report = JsonDocument.Parse(tampered.Stdout))
        {
            var root = report.RootElement;
            root.GetProperty("integrity").GetString().ShouldBe("ok");
            root.GetProperty("migrations").GetProperty("problems")[0].GetString()!.ShouldContain("checksum");
            root.GetProperty("ok").GetBoolean().ShouldBeFalse();
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task BackupCheckRestore_DatabaseOfSeveralMegabytes_ShowProgressOnStderr()
    {
        (await CliProcess.RunAsync(["migrate"], Environment)).ExitCode.ShouldBe(0);
        await SeedLargeMessagesAsync(_data.File("holdfast.db"), sessions: 100, messageBytes: 60 * 1024);
        var backupFile = _backups.File("large.db");

        var backup = await CliProcess.RunAsync(["backup", backupFile], Environment);
        var check = await CliProcess.RunAsync(["check"], Environment);
        var restore = await CliProcess.RunAsync(["restore", backupFile], Environment);

        backup.ExitCode.ShouldBe(0, backup.ToString());
        new FileInfo(backupFile).Length.ShouldBeGreaterThan(5L * 1024 * 1024);
        var backupLines = Lines(backup.Stderr);
        backupLines.Count.ShouldBeGreaterThan(2, backup.Stderr);
        backupLines.ShouldAllBe(l => l.StartsWith("backup: ", StringComparison.Ordinal) && l.Contains("% (", StringComparison.Ordinal));
        backupLines[^1].ShouldStartWith("backup: 100%");
        check.ExitCode.ShouldBe(0, check.ToString());
        var checkLines = Lines(check.Stderr);
        checkLines.Count.ShouldBe(2, check.Stderr);
        checkLines[0].ShouldStartWith($"check: verifying {_data.File("holdfast.db")} (");
        checkLines[1].ShouldContain(": done in ");
        restore.ExitCode.ShouldBe(0, restore.ToString());
        var restoreLines = Lines(restore.Stderr);
        restoreLines.ShouldContain(l => l.StartsWith("restore: keeping the replaced database: ", StringComparison.Ordinal));
        restoreLines.ShouldContain(l => l.StartsWith("restore: keeping the replaced database: 100%", StringComparison.Ordinal));
        restoreLines[^1].ShouldStartWith("restore: 100%");
    }

    [Fact(Timeout = 120_000)]
    public async Task ServeAndBackup_StoreNotPostgres_RefusedWithoutEchoingItAndNothingCreated()
    {
        var wrong = Environment;
        wrong["HOLDFAST_STORE"] = "mysql://root:s3cret@localhost/db";

        var serve = await CliProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0", "--socket", "none"], wrong);
        var backup = await CliProcess.RunAsync(["backup", _backups.File("never.db")], wrong);

        serve.ExitCode.ShouldBe(2, serve.ToString());
        serve.Stderr.ShouldContain("is set but is not a PostgreSQL connection string");
        backup.ExitCode.ShouldBe(2, backup.ToString());
        OneLine(backup.Stderr).ShouldContain("is not a PostgreSQL connection string");
        (serve.Stderr + backup.Stderr).ShouldNotContain("s3cret");
        Directory.GetFiles(_data.Path).ShouldBeEmpty();
    }

    [Fact(Timeout = 120_000)]
    public async Task BackupAndRestore_OnPostgres_RefusedInOneLinePointingToExportAndPgDump()
    {
        var postgres = Environment;
        postgres["HOLDFAST_STORE"] = "postgres://holdfast:s3cret@127.0.0.1:1/holdfast";

        var backup = await CliProcess.RunAsync(["backup", _backups.File("never.db")], postgres);
        var restore = await CliProcess.RunAsync(["restore", _backups.File("never.db")], postgres);

        foreach (var result in new[] { backup, restore })
        {
            result.ExitCode.ShouldBe(2, result.ToString());
            result.Stderr.Trim().Split('\n').Length.ShouldBe(1, result.ToString());
            result.Stderr.ShouldContain("holdfast export");
            result.Stderr.ShouldContain("pg_dump");
            result.Stderr.ShouldContain("postgres://holdfast:***@127.0.0.1:1/holdfast");
            result.Stderr.ShouldNotContain("s3cret");
        }

        File.Exists(_backups.File("never.db")).ShouldBeFalse();
    }

    [Fact(Timeout = 180_000)]
    public async Task Restore_WhileServeRuns_RefusedAndBackupWorks()
    {
        await using var server = await ServerProcess.StartNewAsync();
        var backupFile = _backups.File("live.db");

        var backup = await CliProcess.RunAsync(["backup", backupFile], server.Environment);
        var restore = await CliProcess.RunAsync(["restore", backupFile], server.Environment);

        backup.ExitCode.ShouldBe(0, backup.ToString());
        restore.ExitCode.ShouldNotBe(0, restore.ToString());
        OneLine(restore.Stderr).ShouldContain("--force");
        Directory.GetFiles(server.Data.Path, "*.bak").ShouldBeEmpty();

        await server.StopAsync();
        var afterStop = await CliProcess.RunAsync(["restore", backupFile], server.Environment);

        afterStop.ExitCode.ShouldBe(0, afterStop.ToString());
    }

    private static string OneLine(string stderr)
    {
        var lines = stderr.Trim().Split('\n');
        lines.Length.ShouldBe(1, stderr);
        return lines[0];
    }

    private static List<string> Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    private static async Task ExecuteAsync(string databasePath, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={databasePath};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task StartBotAsync(string databasePath, string sessionId)
    {
        using var database = new SqliteDatabase(databasePath);
        await new SqliteBotStore(database, TimeProvider.System).StartOrReactivateAsync(new StartBotSession(sessionId, "bridge"), new Actor("test"));
        SqliteConnection.ClearAllPools();
    }

    private static async Task SeedLargeMessagesAsync(string databasePath, int sessions, int messageBytes)
    {
        using (var database = new SqliteDatabase(databasePath, synchronous: "NORMAL"))
        {
            var store = new SqliteBotStore(database, TimeProvider.System);
            var actor = new Actor("seed");
            for (var i = 0; i < sessions; i++)
            {
                await store.StartOrReactivateAsync(new StartBotSession($"seed-{i}", "bridge"), actor);
                await store.RecordMessageAsync($"seed-{i}", new string((char)('a' + (i % 26)), messageBytes), actor);
            }
        }

        SqliteConnection.ClearAllPools();
    }

    private static async Task<List<string>> BotIdsAsync(string databasePath)
    {
        await using var connection = new SqliteConnection($"Data Source={databasePath};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT session_id FROM bot_sessions ORDER BY session_id";
        await using var reader = await command.ExecuteReaderAsync();
        var ids = new List<string>();
        while (await reader.ReadAsync())
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }
}
