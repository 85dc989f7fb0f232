using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Tests.Storage;

public sealed class SqliteMigrationTests
{
    private static readonly IReadOnlyList<Migration> Code = SqliteDatabase.KnownMigrations;

    private static readonly Migration NextVersion = MigrationCatalog.Parse(
        "9001_test_add_bot_label.sql",
        "ALTER TABLE bot_sessions ADD COLUMN test_label TEXT;\nCREATE INDEX ix_test_label ON bot_sessions (test_label);\n");

    [Fact(Timeout = 30_000)]
    public async Task MigrateAsync_FreshFile_CreatesSchemaInWalModeAndRecordsChecksums()
    {
        using var temp = new TempDirectory();
        using var database = new SqliteDatabase(temp.File("holdfast.db"));

        var applied = await database.MigrateAsync();
        var again = await database.MigrateAsync();

        applied.Select(m => m.Id).ShouldBe(Code.Select(m => m.Id));
        again.ShouldBeEmpty();
        (await ScalarAsync(database, "PRAGMA journal_mode")).ShouldBe("wal");
        (await ScalarAsync(database, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('bot_sessions', 'session_events')")).ShouldBe(2L);
        var status = await database.GetMigrationStatusAsync();
        status.IsCurrent.ShouldBeTrue();
        status.Applied.Select(a => a.Checksum).ShouldBe(Code.Select(m => m.Checksum));
    }

    [Fact(Timeout = 30_000)]
    public async Task MigrateAsync_DatabaseOfOlderVersion_AppliesOnlyNewerMigrationsAndKeepsData()
    {
        using var temp = new TempDirectory();
        var path = temp.File("holdfast.db");
        using (var older = new SqliteDatabase(path) { Migrations = [Code[0]] })
        {
            await older.MigrateAsync();

            // Written as that version wrote it (today's store writes columns later migrations add).
            await ExecuteAsync(older, "INSERT INTO bot_sessions (session_id, created_at, status, updated_at, bot_type, version) VALUES ('bot1', '2026-01-01T00:00:00.0000000Z', 'active', '2026-01-01T00:00:00.0000000Z', 'web', 1)");
        }

        using var newer = new SqliteDatabase(path) { Migrations = [.. Code, NextVersion] };

        var pendingBefore = (await newer.GetMigrationStatusAsync()).Pending;
        var applied = await newer.MigrateAsync();

        pendingBefore.Select(m => m.Id).ShouldBe(Code.Skip(1).Append(NextVersion).Select(m => m.Id));
        applied.Select(m => m.Id).ShouldBe(pendingBefore.Select(m => m.Id));
        (await newer.GetMigrationStatusAsync()).IsCurrent.ShouldBeTrue();
        (await ScalarAsync(newer, "SELECT count(*) FROM bot_sessions WHERE session_id = 'bot1' AND test_label IS NULL")).ShouldBe(1L);
        (await new SqliteBotStore(newer, TimeProvider.System).FindAsync("bot1")).ShouldNotBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task MigrateAsync_RecordedChecksumTampered_RefusedWithClearMessage()
    {
        using var temp = new TempDirectory();
        using var database = new SqliteDatabase(temp.File("holdfast.db"));
        await database.MigrateAsync();
        await ExecuteAsync(database, "UPDATE schema_migrations SET checksum = 'deadbeefdeadbeefdeadbeef' WHERE version = 1");

        var ex = await Should.ThrowAsync<StoreSchemaException>(() => database.MigrateAsync());
        var check = await SqliteMaintenance.CheckAsync(database.Path);

        ex.Message.ShouldContain($"Migration {Code[0].Id} was applied with checksum deadbeefdead");
        ex.Message.ShouldContain("Restore a backup");
        check.IsHealthy.ShouldBeFalse();
        check.Migrations.Problems.ShouldHaveSingleItem().ShouldContain("checksum");
    }

    [Fact(Timeout = 30_000)]
    public async Task MigrateAsync_MigrationFileChangedAfterApplied_Refused()
    {
        using var temp = new TempDirectory();
        var path = temp.File("holdfast.db");
        using (var original = new SqliteDatabase(path))
        {
            await original.MigrateAsync();
        }

        var edited = MigrationCatalog.Parse(Code[0].Id + ".sql", Code[0].Sql + "\n-- edited after release\n");
        using var database = new SqliteDatabase(path) { Migrations = [edited, .. Code.Skip(1)] };

        var ex = await Should.ThrowAsync<StoreSchemaException>(() => database.MigrateAsync());

        ex.Message.ShouldContain("the applied schema differs from the code");
    }

    [Fact(Timeout = 30_000)]
    public async Task MigrateAsync_DatabaseNewerThanCode_RefusedWithClearMessage()
    {
        using var temp = new TempDirectory();
        var path = temp.File("holdfast.db");
        using (var newer = new SqliteDatabase(path) { Migrations = [.. Code, NextVersion] })
        {
            await newer.MigrateAsync();
        }

        using var database = new SqliteDatabase(path);

        var ex = await Should.ThrowAsync<StoreSchemaException>(() => database.MigrateAsync());

        ex.Message.ShouldContain("9001_test_add_bot_label");
        ex.Message.ShouldContain("newer than the code");
        (await SqliteMaintenance.CheckAsync(path)).IsHealthy.ShouldBeFalse();
    }

    [Fact(Timeout = 30_000)]
    public async Task MigrateAsync_MigrationFailsHalfway_RolledBackAndNotRecorded()
    {
        using var temp = new TempDirectory();
        var broken = MigrationCatalog.Parse("9001_broken.sql", "CREATE TABLE half_done (x INTEGER);\nTHIS IS NOT SQL;\n");
        using var database = new SqliteDatabase(temp.File("holdfast.db")) { Migrations = [.. Code, broken] };

        var ex = await Should.ThrowAsync<StoreSchemaException>(() => database.MigrateAsync());

        ex.Message.ShouldStartWith("Migration 9001_broken failed: ");
        ex.Message.ShouldContain("syntax error");
        ex.Message.ShouldEndWith("; nothing of it was applied.");
        ex.InnerException.ShouldBeOfType<SqliteException>();
        (await ScalarAsync(database, "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'")).ShouldBe(0L);
        var status = await database.GetMigrationStatusAsync();
        status.Applied.Count.ShouldBe(Code.Count);
        status.Pending.ShouldHaveSingleItem().Id.ShouldBe("9001_broken");
    }

    [Fact(Timeout = 30_000)]
    public async Task MigrateAsync_InjectedClock_RecordsAppliedAtFromIt()
    {
        using var temp = new TempDirectory();
        var at = new DateTimeOffset(2031, 2, 3, 4, 5, 6, TimeSpan.Zero);
        using var database = new SqliteDatabase(temp.File("holdfast.db"), time: new FixedTime(at));

        await database.MigrateAsync();

        (await database.GetMigrationStatusAsync()).Applied.ShouldAllBe(m => m.AppliedAt == at);
    }

    [Fact(Timeout = 60_000)]
    public async Task HostStart_TamperedDatabase_RefusesToStart()
    {
        using var temp = new TempDirectory();
        using (var database = new SqliteDatabase(temp.File("holdfast.db")))
        {
            await database.MigrateAsync();
            await ExecuteAsync(database, "UPDATE schema_migrations SET checksum = 'deadbeefdeadbeefdeadbeef' WHERE version = 1");
        }

        using var host = TestHosts.BuildCoreHost(temp.Path);

        var ex = await Should.ThrowAsync<StoreSchemaException>(() => host.StartAsync());

        ex.Message.ShouldContain("checksum");
    }

    [Fact(Timeout = 60_000)]
    public async Task HostStart_PendingMigrationsWithMigrateOnStartOff_RefusesNamingTheCommand()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, new Dictionary<string, string?> { ["Storage:MigrateOnStart"] = "false" });

        var ex = await Should.ThrowAsync<StoreSchemaException>(() => host.StartAsync());

        ex.Message.ShouldContain("holdfast migrate");
    }

    [Fact]
    public void MigrationCatalog_Sqlite_LoadsInVersionOrderWithChecksums()
    {
        // PostgreSQL's catalog: tests/Holdfast.Storage.Postgres.Tests (PostgresMigrationTests, PostgresScriptTests).
        foreach (var migrations in new[] { SqliteDatabase.KnownMigrations })
        {
            migrations[0].Id.ShouldBe("0001_foundation");
            migrations.Select(m => m.Version).ShouldBeInOrder(SortDirection.Ascending);
            migrations.ShouldAllBe(m => m.Checksum.Length == 64);
        }
    }

    private static Task<object?> ScalarAsync(SqliteDatabase database, string sql) =>
        database.ReadAsync(async connection =>
        {
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            return await command.ExecuteScalarAsync();
        });

    private static Task ExecuteAsync(SqliteDatabase database, string sql) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = sql;
            return await command.ExecuteNonQueryAsync();
        });

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
