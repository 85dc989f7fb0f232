using Holdfast.Storage.Sqlite;
using Microsoft.Data.Sqlite;

namespace Holdfast.TestHelpers;

/// <summary>Real SQLite database files made for tests.</summary>
public static class SqliteFiles
{
    /// <summary>
    /// A migrated Holdfast database at <paramref name="path"/> plus a table of <paramref name="rows"/> random 4,000-byte
    /// blobs (about 4 KB of file each), checkpointed into the main file: a sound file whose <c>quick_check</c> takes a
    /// while.
    /// </summary>
    public static async Task CreateLargeAsync(string path, int rows)
    {
        using (var database = new SqliteDatabase(path))
        {
            await database.MigrateAsync();
        }

        await using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
                INSERT INTO filler (body) SELECT randomblob(4000) FROM n;
                PRAGMA wal_checkpoint(TRUNCATE);
                """;
            command.Parameters.AddWithValue("$rows", rows);
            await command.ExecuteNonQueryAsync();
        }

        SqliteConnection.ClearAllPools();
    }
}
