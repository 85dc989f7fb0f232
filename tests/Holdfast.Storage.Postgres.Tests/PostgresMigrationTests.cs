using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Holdfast.TestHelpers;

namespace Holdfast.Storage.Postgres.Tests;

/// <summary>The migrator on a real PostgreSQL: each test gets its own empty database.</summary>
public sealed class PostgresMigrationTests
{
    [Fact(Timeout = 60_000)]
    public async Task MigrateAsync_EmptyDatabase_AppliesEveryMigrationOnceWithChecksums()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        await using var database = new PostgresDatabase(db.Uri);

        var applied = await database.MigrateAsync();
        var again = await database.MigrateAsync();

        applied.Select(m => m.Id).ShouldBe(PostgresMigrations.Load().Select(m => m.Id));
        again.ShouldBeEmpty();
        var status = await database.GetMigrationStatusAsync();
        status.IsCurrent.ShouldBeTrue();
        status.Applied.Select(a => a.Checksum).ShouldBe(PostgresMigrations.Load().Select(m => m.Checksum));
    }

    [Fact(Timeout = 60_000)]
    public async Task MigrateAsync_FiveNodesStartingTogether_ApplyEachMigrationOnce()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        var nodes = Enumerable.Range(0, 5).Select(_ => new PostgresDatabase(db.Uri)).ToList();
        try
        {
            var results = await Task.WhenAll(nodes.Select(n => n.MigrateAsync()));

            results.Sum(r => r.Count).ShouldBe(PostgresMigrations.Load().Count);
            results.Count(r => r.Count > 0).ShouldBe(1);
            ((long)(await db.ScalarAsync("SELECT count(*) FROM schema_migrations"))!).ShouldBe(PostgresMigrations.Load().Count);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task EnsureSchema_OlderDatabaseWithoutMigrateOnStart_RefusesNamingHoldfastMigrate()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        var all = PostgresMigrations.Load();
        await using (var old = new PostgresDatabase(db.Uri) { Migrations = all.Take(all.Count - 1).ToList() })
        {
            await old.MigrateAsync();
        }

        await using var current = new PostgresDatabase(db.Uri);
        var ex = await Should.ThrowAsync<StoreSchemaException>(() => current.EnsureSchemaAsync(migrate: false));

        ex.Message.ShouldContain("run `holdfast migrate");
        ex.Message.ShouldContain(all[^1].Id);
        ex.Message.ShouldNotContain(db.Password!);
        (await current.GetMigrationStatusAsync()).Pending.Count.ShouldBe(1);
    }

    [Fact(Timeout = 60_000)]
    public async Task MigrateAsync_DatabaseNewerThanCode_RefusesAndWritesNothing()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        var all = PostgresMigrations.Load();
        var future = MigrationCatalog.Parse("9999_from_the_future.sql", "CREATE TABLE IF NOT EXISTS from_the_future (id int);");
        await using (var newer = new PostgresDatabase(db.Uri) { Migrations = [.. all, future] })
        {
            await newer.MigrateAsync();
        }

        await using var current = new PostgresDatabase(db.Uri);
        var ex = await Should.ThrowAsync<StoreSchemaException>(() => current.MigrateAsync());

        ex.Message.ShouldContain("9999_from_the_future");
        ex.Message.ShouldContain("newer than the code");
    }

    [Fact(Timeout = 60_000)]
    public async Task MigrateAsync_AlteredChecksum_Refuses()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        await using var database = new PostgresDatabase(db.Uri);
        await database.MigrateAsync();
        await db.ScalarAsync("UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 2");

        var ex = await Should.ThrowAsync<StoreSchemaException>(() => database.EnsureSchemaAsync(migrate: true));

        ex.Message.ShouldContain("0002_generation_sessions");
    }

    [Fact(Timeout = 60_000)]
    public async Task MigrateAsync_FailingMigration_NothingOfItStays()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        var all = PostgresMigrations.Load();
        var broken = MigrationCatalog.Parse("9000_broken.sql", "CREATE TABLE half_done (id int);\nSELECT no_such_function();");
        await using var database = new PostgresDatabase(db.Uri) { Migrations = [.. all, broken] };

        var ex = await Should.ThrowAsync<StoreSchemaException>(() => database.MigrateAsync());

        ex.Message.ShouldContain("9000_broken");
        (await db.ScalarAsync("SELECT to_regclass('public.half_done') IS NULL")).ShouldBe(true);
        ((long)(await db.ScalarAsync("SELECT count(*) FROM schema_migrations"))!).ShouldBe(all.Count);
    }
}
