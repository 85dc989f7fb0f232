using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Generation;
using Holdfast.Security;

namespace Holdfast.Storage.Contract;

/// <summary>
/// What a provider's test project gives the contract suites: fresh stores over real databases. One instance serves a
/// whole test class (xunit <c>IClassFixture</c>); every test gets a store of its own.
/// </summary>
public interface IStoreProvider
{
    /// <summary>A new, empty, migrated store (its own file or database) whose timestamps and lease expiries come from <paramref name="clock"/>.</summary>
    Task<TestStore> CreateStoreAsync(TimeProvider clock);

    /// <summary>Another store instance over the same database as <paramref name="store"/>: a second node.</summary>
    Task<TestStore> OpenSameStoreAsync(TestStore store, TimeProvider clock);

    /// <summary>
    /// Makes every insert into the audit trail (<c>session_events</c>) of <paramref name="store"/>'s database fail
    /// until the result is disposed: a fault between a change and its audit event.
    /// </summary>
    Task<IAsyncDisposable> FailAuditWritesAsync(TestStore store);
}

/// <summary>Every port of one store instance, as a provider made it.</summary>
public sealed class TestStore(
    string location,
    IGenerationStore generations,
    IRunStore runs,
    IBotStore bots,
    IAuditLog audit,
    IApiKeyStore keys,
    IStoreAdministration administration,
    Func<ValueTask> dispose) : IAsyncDisposable
{
    /// <summary>Where the database is (a file path, a connection string): <see cref="IStoreProvider.OpenSameStoreAsync"/> uses it.</summary>
    public string Location { get; } = location;

    public IGenerationStore Generations { get; } = generations;

    public IRunStore Runs { get; } = runs;

    public IBotStore Bots { get; } = bots;

    public IAuditLog Audit { get; } = audit;

    public IApiKeyStore Keys { get; } = keys;

    public IStoreAdministration Administration { get; } = administration;

    /// <summary>The per-key bot login state of the same database (issue 12).</summary>
    public IBotAuthKeyStore? BotAuthKeys { get; init; }

    /// <summary>Webhook subscriptions and the outbox of the same database (issue 12, item 7).</summary>
    public Holdfast.Webhooks.IWebhookStore? Webhooks { get; init; }

    public ValueTask DisposeAsync() => dispose();
}

/// <summary>A clock the tests move by hand, so leases expire without sleeping.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public static ManualClock StartingNow() => new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>
/// Base of every contract suite: a fresh store per test from the provider, on a <see cref="ManualClock"/>. Derived
/// suites are abstract; a provider closes them (<c>SqliteGenerationStoreTests : GenerationStoreContractTests</c>).
/// </summary>
public abstract class StoreContractTests(IStoreProvider provider) : IAsyncLifetime
{
    protected IStoreProvider Provider { get; } = provider;

    protected ManualClock Clock { get; } = ManualClock.StartingNow();

    protected TestStore Store { get; private set; } = null!;

    public async Task InitializeAsync() => Store = await Provider.CreateStoreAsync(Clock);

    public async Task DisposeAsync()
    {
        if (Store is not null)
        {
            await Store.DisposeAsync();
        }
    }
}
