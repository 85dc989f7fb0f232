using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite.Tests;

/// <summary>
/// What is the SQLite file's own behind <see cref="IStoreAdministration"/> (the host uses only the port): the file lock
/// a server holds, and damage found by the quick check at start-up.
/// </summary>
public sealed class SqliteStoreAdministrationFileTests
{
    [Fact(Timeout = 30_000)]
    public async Task HoldForServer_HeldByAnotherServer_RefusedNamingTheFileAndTheHolder()
    {
        using var data = new TempDirectory("hf-hold");
        using var database = new SqliteDatabase(Path.Combine(data.Path, "holdfast.db"));
        await database.MigrateAsync();
        var administration = new SqliteStoreAdministration(database);
        using var held = administration.HoldForServer("holdfast serve");

        var refused = Should.Throw<DatabaseInUseException>(() => new SqliteStoreAdministration(database).HoldForServer("second server"));

        refused.DatabasePath.ShouldBe(database.Path);
        refused.Owner!.ShouldContain("holdfast serve");
    }

    [Fact(Timeout = 60_000)]
    public async Task CheckIntegrityAsync_OverflowPagesOverwritten_DamagedAtBothDepthsAndDamageKnown()
    {
        using var data = new TempDirectory("hf-check");
        var path = Path.Combine(data.Path, "holdfast.db");
        await SqliteDamageTests.SeedAsync(path);
        var bytes = await File.ReadAllBytesAsync(path);
        var overflowPages = Enumerable.Range(0, bytes.Length / 4096)
            .Where(page => bytes.AsSpan((page * 4096) + 4, 4092).IndexOfAnyExcept((byte)'h') < 0)
            .ToList();
        overflowPages.Count.ShouldBeGreaterThan(2);
        await using (var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            file.Position = overflowPages[1] * 4096L;
            await file.WriteAsync(Enumerable.Repeat((byte)0x5A, 4096).ToArray());
        }

        SqliteConnection.ClearAllPools();
        using var database = new SqliteDatabase(path);
        var administration = new SqliteStoreAdministration(database);

        var quick = await administration.CheckIntegrityAsync(StoreCheckDepth.Quick, TimeSpan.FromSeconds(20));
        var full = await administration.CheckIntegrityAsync(StoreCheckDepth.Full);

        quick.Integrity.ShouldBe(StoreIntegrity.Damaged);
        quick.Problems.ShouldNotBeEmpty();
        full.Integrity.ShouldBe(StoreIntegrity.Damaged);
        full.IsHealthy.ShouldBeFalse();
        administration.KnownDamage!.ShouldContain(path);
    }

    [Fact(Timeout = 30_000)]
    public async Task CheckIntegrityAsync_NoFileYet_QuickIsNotCheckedAndFullSaysThereIsNoDatabase()
    {
        using var data = new TempDirectory("hf-check");
        using var database = new SqliteDatabase(Path.Combine(data.Path, "holdfast.db"));
        var administration = new SqliteStoreAdministration(database);

        var quick = await administration.CheckIntegrityAsync(StoreCheckDepth.Quick, TimeSpan.FromSeconds(5));

        quick.Integrity.ShouldBe(StoreIntegrity.NotChecked);
        (await Should.ThrowAsync<Holdfast.Sessions.HoldfastException>(() => administration.CheckIntegrityAsync(StoreCheckDepth.Full))).Message.ShouldContain("no database file");
        File.Exists(database.Path).ShouldBeFalse();
    }
}
