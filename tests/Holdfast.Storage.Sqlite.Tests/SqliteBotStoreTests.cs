using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;

namespace Holdfast.Tests.Bots;

/// <summary>The bot store contract over a real SQLite file.</summary>
public sealed class SqliteBotStoreTests : BotStoreContractTests
{
    private TempDirectory? _temp;
    private SqliteDatabase? _database;

    protected override async Task<(IBotStore Store, IAuditLog Audit)> CreateStoreAsync()
    {
        _temp = new TempDirectory();
        _database = new SqliteDatabase(_temp.File("holdfast.db"));
        await _database.MigrateAsync();
        return (new SqliteBotStore(_database, TimeProvider.System), new SqliteAuditLog(_database));
    }

    protected override Task DisposeStoreAsync()
    {
        _database?.Dispose();
        _temp?.Dispose();
        return Task.CompletedTask;
    }
}
