using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;
using static Holdfast.Storage.Contract.GenerationData;

namespace Holdfast.Storage.Sqlite.Tests;

/// <summary>
/// The connections a <see cref="SqliteDatabase"/> keeps open with their statements prepared: reused between writes
/// and reads, prepared again by SQLite after another connection changed the schema, dropped after a SQLite error, and
/// closed by <see cref="SqliteDatabase.Dispose"/>.
/// </summary>
public sealed class SqliteConnectionCacheTests : IDisposable
{
    private readonly TempDirectory _data = new("hf-conncache");

    public void Dispose() => _data.Dispose();

    [Fact(Timeout = 30_000)]
    public async Task WriteAsync_SecondCreate_SameConnectionAndNoNewStatement()
    {
        // Arrange
        using var database = await MigratedAsync();
        var store = new SqliteGenerationStore(database, TimeProvider.System);
        await store.CreateAsync(NewSession("gen_001"), Alice);
        var writer = database.WriterConnection.ShouldNotBeNull("the writer's connection stays open after its write");
        var statements = writer.StatementCount;

        // Act
        await store.CreateAsync(NewSession("gen_002"), Alice);

        // Assert
        database.WriterConnection.ShouldBeSameAs(writer);
        writer.StatementCount.ShouldBe(statements, "the second create ran the statements the first one prepared");
        statements.ShouldBeGreaterThan(3);
        (await store.FindAsync("gen_002", null)).ShouldNotBeNull().Status.ShouldBe(GenerationStatus.Queued);
    }

    [Fact(Timeout = 30_000)]
    public async Task ReadAsync_ManyReads_OneIdleConnectionServesThem()
    {
        using var database = await MigratedAsync();
        var store = new SqliteGenerationStore(database, TimeProvider.System);
        await store.CreateAsync(NewSession("gen_001"), Alice);

        for (var i = 0; i < 20; i++)
        {
            (await store.FindAsync("gen_001", null)).ShouldNotBeNull();
        }

        database.IdleReaderCount.ShouldBe(1, "reads one after another reuse one connection");
    }

    [Fact(Timeout = 30_000)]
    public async Task CachedStatement_TriggerAddedAndDroppedByAnotherConnection_EachTakesEffectOnTheNextWrite()
    {
        // Arrange: the audit insert is prepared on the writer's connection.
        using var database = await MigratedAsync();
        var store = new SqliteGenerationStore(database, TimeProvider.System);
        await store.CreateAsync(NewSession("gen_001"), Alice);
        await ExecuteElsewhereAsync("CREATE TRIGGER test_refuse BEFORE INSERT ON session_events BEGIN SELECT RAISE(ABORT, 'test: refused'); END;");

        // Act: the kept statement sees the schema change (SQLite prepares it again), and the write is refused whole.
        var refused = await Should.ThrowAsync<StoreUnavailableException>(() => store.CreateAsync(NewSession("gen_002"), Alice));
        await ExecuteElsewhereAsync("DROP TRIGGER test_refuse;");
        await store.CreateAsync(NewSession("gen_003"), Alice);

        // Assert
        refused.Message.ShouldContain("test: refused");
        (await store.FindAsync("gen_002", null)).ShouldBeNull("the refused create left nothing");
        (await store.FindAsync("gen_003", null)).ShouldNotBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task WriteAsync_SqliteErrorInTheWork_ConnectionDroppedAndTheNextWriteOpensAnother()
    {
        using var database = await MigratedAsync();
        var store = new SqliteGenerationStore(database, TimeProvider.System);
        await store.CreateAsync(NewSession("gen_001"), Alice);
        var before = database.WriterConnection.ShouldNotBeNull();

        await Should.ThrowAsync<SqliteException>(() => database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "INSERT INTO no_such_table VALUES (1)";
            return await command.ExecuteNonQueryAsync();
        }));
        database.WriterConnection.ShouldBeNull("a connection whose work failed in SQLite is not kept");
        await store.CreateAsync(NewSession("gen_002"), Alice);

        database.WriterConnection.ShouldNotBeNull().ShouldNotBeSameAs(before);
        before.State.ShouldBe(System.Data.ConnectionState.Closed);
    }

    [Fact(Timeout = 30_000)]
    public async Task WriteAsync_RefusedByTheCaller_RolledBackAndTheConnectionKept()
    {
        using var database = await MigratedAsync();
        var store = new SqliteGenerationStore(database, TimeProvider.System);
        await store.CreateAsync(NewSession("gen_001"), Alice);
        var before = database.WriterConnection.ShouldNotBeNull();

        await Should.ThrowAsync<InvalidOperationException>(() => database.WriteAsync<int>(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "DELETE FROM generation_sessions";
            await command.ExecuteNonQueryAsync();
            throw new InvalidOperationException("the caller changed its mind");
        }));

        database.WriterConnection.ShouldBeSameAs(before);
        (await store.FindAsync("gen_001", null)).ShouldNotBeNull("the work was rolled back");
    }

    [Fact(Timeout = 30_000)]
    public async Task Dispose_KeptConnections_ClosedSoTheFileCanLeaveWal()
    {
        // Arrange: a write and reads leave the writer's connection and an idle reader open.
        var path = _data.File("holdfast.db");
        var database = new SqliteDatabase(path);
        await database.MigrateAsync();
        var store = new SqliteGenerationStore(database, TimeProvider.System);
        await store.CreateAsync(NewSession("gen_001"), Alice);
        (await store.FindAsync("gen_001", null)).ShouldNotBeNull();
        database.IdleReaderCount.ShouldBe(1);
        database.WriterConnection.ShouldNotBeNull();
        SqliteConnection.ClearAllPools(); // not theirs: they are the database's own

        // Act
        database.Dispose();

        // Assert: no connection of the database is open any more, so WAL can be left (an open one would make this wait
        // out the busy timeout and fail).
        database.IdleReaderCount.ShouldBe(0);
        database.WriterConnection.ShouldBeNull();
        (await JournalModeElsewhereAsync("DELETE")).ShouldBe("delete");
    }

    private async Task<SqliteDatabase> MigratedAsync()
    {
        var database = new SqliteDatabase(_data.File("holdfast.db"));
        await database.MigrateAsync();
        return database;
    }

    private async Task ExecuteElsewhereAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={_data.File("holdfast.db")};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<string> JournalModeElsewhereAsync(string mode)
    {
        await using var connection = new SqliteConnection($"Data Source={_data.File("holdfast.db")};Pooling=False;Default Timeout=2");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"PRAGMA journal_mode = {mode}";
        return (string)(await command.ExecuteScalarAsync())!;
    }
}
