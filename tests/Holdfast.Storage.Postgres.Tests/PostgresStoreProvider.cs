using System.Collections.Concurrent;
using Holdfast.Storage.Contract;
using Holdfast.TestHelpers;

namespace Holdfast.Storage.Postgres.Tests;

/// <summary>
/// PostgreSQL for the contract suites: every store is a new database on the server of <c>HOLDFAST_TEST_POSTGRES</c>
/// (so test classes run in parallel without seeing each other), dropped when the test class is done. Without the
/// variable, or with a server that does not answer, the tests fail: they never skip.
/// </summary>
public sealed class PostgresStoreProvider : IStoreProvider, IAsyncLifetime
{
    private readonly ConcurrentDictionary<string, TestDatabase> _databases = new(StringComparer.Ordinal);

    public async Task<TestStore> CreateStoreAsync(TimeProvider clock)
    {
        var database = await TestPostgres.CreateDatabaseAsync("holdfast_contract");
        _databases[database.Uri] = database;
        var store = Open(database.Uri, clock);
        await store.Administration.MigrateAsync();
        return store;
    }

    public Task<TestStore> OpenSameStoreAsync(TestStore store, TimeProvider clock) => Task.FromResult(Open(store.Location, clock));

    public async Task<IAsyncDisposable> FailAuditWritesAsync(TestStore store)
    {
        var database = _databases[store.Location];
        await database.ScalarAsync("""
            CREATE FUNCTION test_fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'test: audit write refused'; END $$;
            CREATE TRIGGER test_fail_audit BEFORE INSERT ON session_events FOR EACH ROW EXECUTE FUNCTION test_fail_audit();
            """);
        return new Lift(database);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var database in _databases.Values)
        {
            await database.DisposeAsync();
        }
    }

    private static TestStore Open(string uri, TimeProvider clock)
    {
        var store = new PostgresStore(uri, clock);
        return new TestStore(uri, store.Generations, store.Runs, store.Bots, store.Audit, store.ApiKeys, store.Administration, store.DisposeAsync)
        {
            BotAuthKeys = store.BotAuthKeys,
            Webhooks = store.Webhooks,
        };
    }

    private sealed class Lift(TestDatabase database) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() =>
            await database.ScalarAsync("DROP TRIGGER test_fail_audit ON session_events; DROP FUNCTION test_fail_audit();");
    }
}
