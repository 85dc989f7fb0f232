using System.Globalization;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite.Tests;

/// <summary>
/// Writes that wait for the one writer together share one transaction and one commit: each runs in its own savepoint,
/// so one that throws is undone alone; a failure that ends the transaction fails the writes that ran in it, and the
/// ones not run yet still run, once. Priority writes go first; a write whose caller gave up never runs.
/// </summary>
public sealed class SqliteWriteBatchTests : IDisposable
{
    private readonly TempDirectory _data = new("hf-writebatch");

    public void Dispose() => _data.Dispose();

    [Fact(Timeout = 30_000)]
    public async Task WritesArrivingTogether_ShareOneCommit_AndEachGetsItsOwnResult()
    {
        // Arrange: one write holds the writer while twenty more arrive.
        using var database = await DatabaseAsync();
        var before = database.Commits;

        // Act
        var (held, queued) = await WhileTheWriterIsHeldAsync<long>(database, () =>
            Enumerable.Range(1, 20).Select(id => InsertAsync(database, id)).ToList());

        // Assert
        (await Task.WhenAll(queued)).ShouldBe(Enumerable.Range(1, 20).Select(id => (long)id).ToArray());
        await held;
        (database.Commits - before).ShouldBe(2, "the held write, then the twenty queued behind it in one transaction");
        (await IdsAsync(database)).ShouldBe(Enumerable.Range(1, 20).Select(id => (long)id).ToArray());
    }

    [Fact(Timeout = 30_000)]
    public async Task OneWriteOfABatchThrows_OnlyItIsUndone_AndTheConnectionIsKept()
    {
        // Arrange
        using var database = await DatabaseAsync();
        await InsertAsync(database, 100);
        var connection = database.WriterConnection.ShouldNotBeNull();
        Task<long>? refused = null;

        // Act: the second of three writes inserts its row, then refuses (as a conflict does).
        var (held, queued) = await WhileTheWriterIsHeldAsync<long>(database, () =>
        {
            var first = InsertAsync(database, 1);
            refused = database.WriteAsync<long>(async (c, t) =>
            {
                await ExecuteAsync(c, t, "INSERT INTO items (id) VALUES (2)");
                throw new SessionConflictException("refused after writing");
            });
            return [first, InsertAsync(database, 3)];
        });

        // Assert
        await Task.WhenAll(queued);
        await held;
        await Should.ThrowAsync<SessionConflictException>(refused!);
        (await IdsAsync(database)).ShouldBe([1, 3, 100]);
        database.WriterConnection.ShouldBeSameAs(connection, "the caller's own refusal leaves the connection good");
    }

    [Fact(Timeout = 30_000)]
    public async Task ConstraintViolationInABatch_FailsThatWriteAlone_AndTheConnectionIsReplaced()
    {
        // Arrange
        using var database = await DatabaseAsync();
        await InsertAsync(database, 2);
        var connection = database.WriterConnection.ShouldNotBeNull();
        Task<long>? duplicate = null;

        // Act
        var (held, queued) = await WhileTheWriterIsHeldAsync<long>(database, () =>
        {
            var first = InsertAsync(database, 1);
            duplicate = InsertAsync(database, 2);
            return [first, InsertAsync(database, 3)];
        });

        // Assert
        await Task.WhenAll(queued);
        await held;
        (await Should.ThrowAsync<SqliteException>(duplicate!)).SqliteErrorCode.ShouldBe(SQLitePCL.raw.SQLITE_CONSTRAINT);
        (await IdsAsync(database)).ShouldBe([1, 2, 3]);
        database.WriterConnection.ShouldBeNull("a connection that saw a SQLite error is not kept");
        connection.State.ShouldBe(System.Data.ConnectionState.Closed);
    }

    [Fact(Timeout = 30_000)]
    public async Task FullDiskInABatch_FailsTheWritesThatRan_AndRunsTheRestOnce()
    {
        // Arrange: the writer's connection may not grow the file by more than a few pages.
        using var database = await DatabaseAsync();
        await database.WriteAsync(async (c, t) =>
        {
            var pages = await ScalarAsync(c, t, "PRAGMA page_count");
            await ExecuteAsync(c, t, string.Create(CultureInfo.InvariantCulture, $"PRAGMA max_page_count = {pages + 4}"));
            return 0;
        });
        var runs = new int[3];
        Task<int> Counted(int index, string sql) => database.WriteAsync(async (c, t) =>
        {
            Interlocked.Increment(ref runs[index]);
            await ExecuteAsync(c, t, sql);
            return index;
        });
        var writes = new List<Task<int>>();

        // Act: the second write needs far more pages than are left.
        var (held, _) = await WhileTheWriterIsHeldAsync<int>(database, () =>
        {
            writes.Add(Counted(0, "INSERT INTO items (id) VALUES (1)"));
            writes.Add(Counted(1, "INSERT INTO items (id, payload) VALUES (2, zeroblob(1048576))"));
            writes.Add(Counted(2, "INSERT INTO items (id) VALUES (3)"));
            return [];
        });
        await held;

        // Assert: the first two were in the failed transaction; the third ran afterwards, on a new connection.
        (await Should.ThrowAsync<StoreUnavailableException>(writes[0])).Message.ShouldContain("the disk is full");
        (await Should.ThrowAsync<StoreUnavailableException>(writes[1])).Message.ShouldContain("the disk is full");
        (await writes[2]).ShouldBe(2);
        runs.ShouldBe([1, 1, 1], "no write's work runs twice");
        (await IdsAsync(database)).ShouldBe([3]);
        database.WriteFailure.ShouldBeNull("the write that committed afterwards cleared the failure");
    }

    [Fact(Timeout = 30_000)]
    public async Task WriteCancelledWhileQueued_NeverRuns()
    {
        // Arrange
        using var database = await DatabaseAsync();
        using var cancel = new CancellationTokenSource();
        var ran = false;
        Task<int>? cancelled = null;

        // Act
        var (held, queued) = await WhileTheWriterIsHeldAsync<long>(database, () =>
        {
            cancelled = database.WriteAsync(
                (_, _) =>
                {
                    ran = true;
                    return Task.FromResult(0);
                },
                cancel.Token);
            cancel.Cancel();
            return [InsertAsync(database, 1)];
        });

        // Assert
        await Should.ThrowAsync<OperationCanceledException>(cancelled!);
        await Task.WhenAll(queued);
        await held;
        ran.ShouldBeFalse();
        (await IdsAsync(database)).ShouldBe([1]);
    }

    [Fact(Timeout = 30_000)]
    public async Task PriorityWrite_RunsBeforeOrdinaryOnesThatQueuedEarlier()
    {
        // Arrange
        using var database = await DatabaseAsync();
        var order = new List<string>();
        Task<int> Recorded(string name, bool priority)
        {
            Task<int> Work(SqliteConnection c, SqliteTransaction t)
            {
                lock (order)
                {
                    order.Add(name);
                }

                return Task.FromResult(0);
            }

            return priority ? database.WriteAheadAsync(Work) : database.WriteAsync(Work);
        }

        // Act
        var (held, _) = await WhileTheWriterIsHeldAsync<int>(database, () =>
            [Recorded("a", false), Recorded("b", false), Recorded("renewal", true), Recorded("c", false)]);
        await held;
        await database.WriteAsync((_, _) => Task.FromResult(0));

        // Assert
        order.ShouldBe(["renewal", "a", "b", "c"]);
    }

    /// <summary>
    /// Starts a write that holds the writer, runs <paramref name="queue"/> (whose writes wait behind it), then lets the
    /// held write commit. Completes with the held write and the tasks <paramref name="queue"/> returned.
    /// </summary>
    private static async Task<(Task Held, List<Task<T>> Queued)> WhileTheWriterIsHeldAsync<T>(SqliteDatabase database, Func<List<Task<T>>> queue)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = database.WriteAsync(async (_, _) =>
        {
            started.SetResult();
            await release.Task;
            return 0;
        });
        await started.Task;
        var queued = queue();
        release.SetResult();
        return (held, queued);
    }

    private static Task<long> InsertAsync(SqliteDatabase database, long id) =>
        database.WriteAsync(async (c, t) =>
        {
            await ExecuteAsync(c, t, string.Create(CultureInfo.InvariantCulture, $"INSERT INTO items (id) VALUES ({id})"));
            return id;
        });

    private async Task<SqliteDatabase> DatabaseAsync()
    {
        var database = new SqliteDatabase(_data.File("batch.db"));
        await database.WriteAsync(async (c, t) =>
        {
            await ExecuteAsync(c, t, "CREATE TABLE items (id INTEGER PRIMARY KEY, payload BLOB)");
            return 0;
        });
        return database;
    }

    private static Task<long[]> IdsAsync(SqliteDatabase database) =>
        database.ReadAsync(async c =>
        {
            var ids = new List<long>();
            await using var command = c.CreateCommand();
            command.CommandText = "SELECT id FROM items ORDER BY id";
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                ids.Add(reader.GetInt64(0));
            }

            return ids.ToArray();
        });

    private static async Task ExecuteAsync(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> ScalarAsync(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }
}
