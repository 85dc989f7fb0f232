using Holdfast.Storage.Contract;

namespace Holdfast.Storage.Sqlite.Tests;

/// <summary>The bot store contract over a real SQLite file.</summary>
public sealed class SqliteBotStoreTests(SqliteStoreProvider provider) : BotStoreContractTests(provider), IClassFixture<SqliteStoreProvider>;
