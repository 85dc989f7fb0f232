using Holdfast.Storage.Contract;
using Holdfast.TestHelpers;

namespace Holdfast.Storage.Sqlite.Tests;

/// <summary>SQLite for the contract suites: a real database file per store, in a temporary folder per test class.</summary>
public sealed class SqliteStoreProvider : IStoreProvider, IDisposable
{
    private readonly TempDirectory _folder = new("hf-contract");

    public async Task<TestStore> CreateStoreAsync(TimeProvider clock)
    {
        var store = Open(_folder.File($"{Guid.NewGuid():N}.db"), clock);
        await store.Administration.MigrateAsync();
        return store;
    }

    public Task<TestStore> OpenSameStoreAsync(TestStore store, TimeProvider clock) => Task.FromResult(Open(store.Location, clock));

    public async Task<IAsyncDisposable> FailAuditWritesAsync(TestStore store)
    {
        var database = new SqliteDatabase(store.Location);
        await ExecuteAsync(database, "CREATE TRIGGER test_fail_audit BEFORE INSERT ON session_events BEGIN SELECT RAISE(ABORT, 'test: audit write refused'); END;");
        return new Lift(database);
    }

    public void Dispose() => _folder.Dispose();

    private static TestStore Open(string path, TimeProvider clock)
    {
        var database = new SqliteDatabase(path, time: clock);
        var generations = new SqliteGenerationStore(database, clock);
        return new TestStore(
            database.Path,
            generations,
            generations,
            new SqliteBotStore(database, clock),
            new SqliteAuditLog(database),
            new SqliteApiKeyStore(database),
            new SqliteStoreAdministration(database),
            () =>
            {
                database.Dispose();
                return ValueTask.CompletedTask;
            })
        {
            BotAuthKeys = new SqliteBotAuthKeyStore(database, clock),
            Webhooks = new SqliteWebhookStore(database, clock),
        };
    }

    private static Task ExecuteAsync(SqliteDatabase database, string sql) =>
        database.WriteAsync(
            async (connection, transaction) =>
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = sql;
                return await command.ExecuteNonQueryAsync();
            });

    private sealed class Lift(SqliteDatabase database) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await ExecuteAsync(database, "DROP TRIGGER test_fail_audit");
            database.Dispose();
        }
    }
}
