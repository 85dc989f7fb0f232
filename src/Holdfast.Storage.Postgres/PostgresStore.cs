using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Generation;
using Holdfast.Security;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// Every port over one PostgreSQL database: what a process (a <c>holdfast serve</c> node, a CLI command, a test) uses
/// to reach the store. Several instances over one database behave like several nodes: they share rows, leases and
/// change signals (<c>LISTEN/NOTIFY</c>).
/// </summary>
public sealed class PostgresStore : IAsyncDisposable
{
    private readonly PostgresChangeSignals _signals;
    private int _disposed;

    /// <summary>A store over <paramref name="store"/> (a postgres:// URI or an Npgsql keyword string). Opens no connection yet.</summary>
    public PostgresStore(string store, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        var clock = time ?? TimeProvider.System;
        Database = new PostgresDatabase(store, clock);
        Location = PostgresConnectionString.Redact(store);
        var generations = new PostgresGenerationStore(Database, clock);
        Generations = generations;
        Runs = generations;
        Bots = new PostgresBotStore(Database, clock);
        BotAuthKeys = new PostgresBotAuthKeyStore(Database, clock);
        ApiKeys = new PostgresApiKeyStore(Database);
        Audit = new PostgresAuditLog(Database);
        Webhooks = new PostgresWebhookStore(Database, clock);
        Administration = new PostgresStoreAdministration(Database, Location);
        _signals = new PostgresChangeSignals(Database, clock);
    }

    /// <summary>The store's location with its password redacted (what logs, errors and <c>holdfast status</c> show).</summary>
    public string Location { get; }

    /// <summary>The database (connections, migrations, error translation).</summary>
    public PostgresDatabase Database { get; }

    public IGenerationStore Generations { get; }

    public IRunStore Runs { get; }

    public IBotStore Bots { get; }

    public IBotAuthKeyStore BotAuthKeys { get; }

    public IApiKeyStore ApiKeys { get; }

    public IAuditLog Audit { get; }

    /// <summary>Webhook subscriptions and the outbox (issue 12).</summary>
    public Holdfast.Webhooks.IWebhookStore Webhooks { get; }

    public IStoreAdministration Administration { get; }

    public IChangeSignals Signals => _signals;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _signals.DisposeAsync();
        await Database.DisposeAsync();
    }
}
