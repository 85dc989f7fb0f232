using Holdfast.Storage.Contract;

namespace Holdfast.Storage.Sqlite.Tests;

/// <summary>The generation store contract over real SQLite files.</summary>
public sealed class SqliteGenerationStoreTests(SqliteStoreProvider provider) : GenerationStoreContractTests(provider), IClassFixture<SqliteStoreProvider>;

/// <summary>The run store contract (leases, fencing, recovery) over real SQLite files; "two nodes" are two store instances on one file.</summary>
public sealed class SqliteRunStoreTests(SqliteStoreProvider provider) : RunStoreContractTests(provider), IClassFixture<SqliteStoreProvider>;

/// <summary>The API key store contract over real SQLite files.</summary>
public sealed class SqliteApiKeyStoreTests(SqliteStoreProvider provider) : ApiKeyStoreContractTests(provider), IClassFixture<SqliteStoreProvider>;

/// <summary>The store administration contract over real SQLite files.</summary>
public sealed class SqliteStoreAdministrationTests(SqliteStoreProvider provider) : StoreAdministrationContractTests(provider), IClassFixture<SqliteStoreProvider>;

/// <summary>Export and import between SQLite files.</summary>
public sealed class SqliteStoreTransferTests(SqliteStoreProvider provider) : StoreTransferContractTests(provider), IClassFixture<SqliteStoreProvider>;

/// <summary>Bot connection state, numbered QR codes, message times and per-key login state over real SQLite files.</summary>
public sealed class SqliteBotConnectionTests(SqliteStoreProvider provider) : BotConnectionContractTests(provider), IClassFixture<SqliteStoreProvider>;

/// <summary>Webhook subscriptions and the outbox over real SQLite files.</summary>
public sealed class SqliteWebhookStoreTests(SqliteStoreProvider provider) : WebhookStoreContractTests(provider), IClassFixture<SqliteStoreProvider>;

/// <summary>Bot leases (one holder, fencing epoch, release) over real SQLite files.</summary>
public sealed class SqliteBotLeaseTests(SqliteStoreProvider provider) : BotLeaseContractTests(provider), IClassFixture<SqliteStoreProvider>;
