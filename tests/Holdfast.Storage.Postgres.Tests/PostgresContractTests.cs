using Holdfast.Storage.Contract;

namespace Holdfast.Storage.Postgres.Tests;

/// <summary>The generation store contract over a real PostgreSQL, a new database per test.</summary>
public sealed class PostgresGenerationStoreTests(PostgresStoreProvider provider) : GenerationStoreContractTests(provider), IClassFixture<PostgresStoreProvider>;

/// <summary>The run store contract (leases, fencing, recovery); "two nodes" are two store instances on one database.</summary>
public sealed class PostgresRunStoreContractTests(PostgresStoreProvider provider) : RunStoreContractTests(provider), IClassFixture<PostgresStoreProvider>;

/// <summary>The bot store contract, the design record's flow included.</summary>
public sealed class PostgresBotStoreTests(PostgresStoreProvider provider) : BotStoreContractTests(provider), IClassFixture<PostgresStoreProvider>;

/// <summary>The API key store contract.</summary>
public sealed class PostgresApiKeyStoreTests(PostgresStoreProvider provider) : ApiKeyStoreContractTests(provider), IClassFixture<PostgresStoreProvider>;

/// <summary>The store administration contract.</summary>
public sealed class PostgresStoreAdministrationTests(PostgresStoreProvider provider) : StoreAdministrationContractTests(provider), IClassFixture<PostgresStoreProvider>;

/// <summary>Export and import between PostgreSQL databases.</summary>
public sealed class PostgresStoreTransferTests(PostgresStoreProvider provider) : StoreTransferContractTests(provider), IClassFixture<PostgresStoreProvider>;

/// <summary>Bot connection state, numbered QR codes, message times and per-key login state over PostgreSQL.</summary>
public sealed class PostgresBotConnectionTests(PostgresStoreProvider provider) : BotConnectionContractTests(provider), IClassFixture<PostgresStoreProvider>;

/// <summary>Webhook subscriptions and the outbox over a real PostgreSQL (claims with SKIP LOCKED across two "nodes").</summary>
public sealed class PostgresWebhookStoreTests(PostgresStoreProvider provider) : WebhookStoreContractTests(provider), IClassFixture<PostgresStoreProvider>;

/// <summary>Bot leases across nodes (one holder, fencing epoch, release) over PostgreSQL.</summary>
public sealed class PostgresBotLeaseTests(PostgresStoreProvider provider) : BotLeaseContractTests(provider), IClassFixture<PostgresStoreProvider>;
