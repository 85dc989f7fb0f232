using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;

namespace Holdfast.Tests.Storage;

public sealed class SqliteMigrationSmokeTests
{
    [Fact(Timeout = 30_000)]
    public async Task MigrateAsync_FreshFile_AppliesAllAndIsCurrent()
    {
        using var temp = new TempDirectory();
        using var database = new SqliteDatabase(temp.File("holdfast.db"));

        var applied = await database.MigrateAsync();
        var status = await database.GetMigrationStatusAsync();

        applied.ShouldNotBeEmpty();
        status.IsCurrent.ShouldBeTrue();
    }
}
