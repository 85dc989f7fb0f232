using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite.Tests;

/// <summary>
/// The WAL is copied back into the database file by a background checkpoint, never inside a commit: the writer's
/// connection has SQLite's automatic checkpoint off, and the file still takes in what was written.
/// </summary>
public sealed class SqliteCheckpointTests : IDisposable
{
    private readonly TempDirectory _data = new("hf-checkpoint");

    public void Dispose() => _data.Dispose();

    [Fact(Timeout = 60_000)]
    public async Task Writes_NoCheckpointInsideACommit_BackgroundCheckpointCopiesTheWalBack()
    {
        // Arrange
        using var database = new SqliteDatabase(_data.File("holdfast.db"));
        await database.MigrateAsync();
        await database.WriteAsync(async (connection, transaction) =>
        {
            await using var create = connection.CreateCommand();
            create.Transaction = transaction;
            create.CommandText = "CREATE TABLE test_blobs (n INTEGER PRIMARY KEY, data BLOB NOT NULL)";
            return await create.ExecuteNonQueryAsync();
        });
        var before = new FileInfo(database.Path).Length;

        // Act: ~12 MB in 300 commits, far more than the 1,000 pages (4 MB) after which SQLite would checkpoint itself.
        long autocheckpoint = -1;
        for (var i = 0; i < 300; i++)
        {
            autocheckpoint = await database.WriteAsync(async (connection, transaction) =>
            {
                await using var insert = connection.CreateCommand();
                insert.Transaction = transaction;
                insert.CommandText = "INSERT INTO test_blobs (data) VALUES (randomblob(40000))";
                await insert.ExecuteNonQueryAsync();
                await using var pragma = connection.CreateCommand();
                pragma.Transaction = transaction;
                pragma.CommandText = "PRAGMA wal_autocheckpoint";
                return (long)(await pragma.ExecuteScalarAsync())!;
            });
            if (i % 50 == 0)
            {
                await Task.Delay(SqliteDatabase.CheckpointInterval); // let a background checkpoint start between writes
            }
        }

        // Assert
        autocheckpoint.ShouldBe(0, "no commit of the writer runs a checkpoint itself");
        await Poll.UntilAsync(() => Task.FromResult(database.Checkpoints > 0), "a background checkpoint");
        await Poll.UntilAsync(
            () => Task.FromResult(new FileInfo(database.Path).Length > before + (4L << 20)),
            "the database file to take in what the WAL held");
        await using var reader = new SqliteConnection($"Data Source={database.Path};Mode=ReadOnly;Pooling=False");
        await reader.OpenAsync();
        await using var count = reader.CreateCommand();
        count.CommandText = "SELECT count(*) FROM test_blobs";
        ((long)(await count.ExecuteScalarAsync())!).ShouldBe(300);
    }
}
