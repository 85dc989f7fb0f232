using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Tests.Audit;

public sealed class SqliteAuditLogTests
{
    [Theory(Timeout = 30_000)]
    [InlineData("UPDATE session_events SET action = 'forged'")]
    [InlineData("DELETE FROM session_events")]
    public async Task SessionEvents_UpdateOrDelete_RejectedAsAppendOnly(string sql)
    {
        using var temp = new TempDirectory();
        using var database = new SqliteDatabase(temp.File("holdfast.db"));
        await database.MigrateAsync();
        await new SqliteBotStore(database, TimeProvider.System).StartOrReactivateAsync(new StartBotSession("bot1"), new Actor("alice"));

        var ex = await Should.ThrowAsync<SqliteException>(() => database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = sql;
            return await command.ExecuteNonQueryAsync();
        }));

        ex.Message.ShouldContain("append-only");
        var events = await new SqliteAuditLog(database).ReadAuditAsync(SessionKind.Bot, "bot1");
        events.Events.ShouldHaveSingleItem().Action.ShouldBe("bot.created");
    }

    [Fact(Timeout = 30_000)]
    public async Task ReadAuditAsync_LimitOutOfRange_RejectedNamingTheLimit()
    {
        using var temp = new TempDirectory();
        using var database = new SqliteDatabase(temp.File("holdfast.db"));
        await database.MigrateAsync();
        IAuditLog audit = new SqliteAuditLog(database);

        var ex = await Should.ThrowAsync<InvalidSessionInputException>(() => audit.ReadAuditAsync(SessionKind.Bot, "bot1", limit: 5000));

        ex.Message.ShouldContain("1000");
    }

    [Fact]
    public void CombineDetail_ReasonAndDetail_KeepsBoth()
    {
        AuditActions.CombineDetail("2 characters", "testing").ShouldBe("testing (2 characters)");
        AuditActions.CombineDetail(null, "why").ShouldBe("why");
        AuditActions.CombineDetail("what", null).ShouldBe("what");
    }

    [Fact]
    public void CombineDetail_DetailIsTheReason_WrittenOnce()
    {
        AuditActions.CombineDetail("coffee", "coffee").ShouldBe("coffee");
    }
}
