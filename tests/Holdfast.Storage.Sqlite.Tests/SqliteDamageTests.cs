using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite.Tests;

/// <summary>
/// A damaged page can hand back a row SQLite itself finds nothing wrong with, whose values then fail to decode. Such a
/// failure is checked against the file: damage is reported as the store being unavailable, a sound file lets the
/// decoding error through as the bug it is.
/// </summary>
public sealed class SqliteDamageTests
{
    [Fact(Timeout = 60_000)]
    public async Task FindAsync_RowUndecodableAndFileDamaged_StoreUnavailableNamingFileAndRestore()
    {
        // Arrange: bot00's created_at is garbage, and overflow pages of bot07's message (never read here) are overwritten.
        using var data = new TempDirectory("hf-undecodable");
        var path = Path.Combine(data.Path, "holdfast.db");
        await SeedAsync(path);
        await SetGarbageCreatedAtAsync(path, "bot00");
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
        var store = new SqliteBotStore(database, TimeProvider.System);

        // Act
        var failure = await Should.ThrowAsync<StoreUnavailableException>(() => store.FindAsync("bot00"));

        // Assert
        failure.Message.ShouldContain(path);
        failure.Message.ShouldContain("holdfast restore");
        database.Damage.ShouldBe(failure.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task FindAsync_RowUndecodableOnSoundFile_DecodingErrorSurfacesAndNoDamageRecorded()
    {
        // Arrange
        using var data = new TempDirectory("hf-undecodable");
        var path = Path.Combine(data.Path, "holdfast.db");
        await SeedAsync(path);
        await SetGarbageCreatedAtAsync(path, "bot00");
        SqliteConnection.ClearAllPools();
        using var database = new SqliteDatabase(path);
        var store = new SqliteBotStore(database, TimeProvider.System);

        // Act
        await Should.ThrowAsync<FormatException>(() => store.FindAsync("bot00"));

        // Assert
        database.Damage.ShouldBeNull();
        (await store.FindAsync("bot01")).ShouldNotBeNull();
    }

    internal static async Task SeedAsync(string path)
    {
        using var database = new SqliteDatabase(path);
        await database.MigrateAsync();
        var store = new SqliteBotStore(database, TimeProvider.System);
        for (var i = 0; i < 8; i++)
        {
            await store.StartOrReactivateAsync(new StartBotSession($"bot{i:00}", "bridge"), new Actor("seed"));
            await store.RecordMessageAsync($"bot{i:00}", new string((char)('a' + i), 48 * 1024), new Actor("seed"));
        }

        SqliteConnection.ClearAllPools();
    }

    private static async Task SetGarbageCreatedAtAsync(string path, string sessionId)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "UPDATE bot_sessions SET created_at = 'not a time' WHERE session_id = $id; PRAGMA wal_checkpoint(TRUNCATE);";
        command.Parameters.AddWithValue("$id", sessionId);
        await command.ExecuteNonQueryAsync();
    }
}
