using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;

using Holdfast.Tests.Storage;

namespace Holdfast.Tests.Bots;

/// <summary>Writers in several processes (as the service, the CLI and a second service would be) on one session.</summary>
[Collection(ResourceHeavyCollection.Name)]
public sealed class SqliteBotStoreMultiProcessTests
{
    [Fact(Timeout = 180_000)]
    public async Task RecordMessageAsync_TwoChildProcessesAndThisOneOnOneSession_NoWriteLost()
    {
        using var temp = new TempDirectory();
        var path = temp.File("holdfast.db");
        using var database = new SqliteDatabase(path);
        await database.MigrateAsync();
        var store = new SqliteBotStore(database, TimeProvider.System);
        await store.StartOrReactivateAsync(new StartBotSession("shared"), new Actor("test"));
        const int PerWriter = 100;

        using var first = TestChildProcess.Start("bot-messages", path, "shared", "child-a", PerWriter.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var second = TestChildProcess.Start("bot-messages", path, "shared", "child-b", PerWriter.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await first.WaitForLinesAsync(1);
        for (var i = 0; i < PerWriter; i++)
        {
            await store.RecordMessageAsync("shared", $"parent {i}", new Actor("parent"));
        }

        await first.WaitForLinesAsync(PerWriter + 1, TimeSpan.FromSeconds(120));
        await second.WaitForLinesAsync(PerWriter + 1, TimeSpan.FromSeconds(120));

        var session = await store.FindAsync("shared");
        session!.Version.ShouldBe(1 + (3 * PerWriter));
        var audit = await new SqliteAuditLog(database).ReadAuditAsync(SessionKind.Bot, "shared", limit: 1000);
        audit.Events.Count.ShouldBe(1 + (3 * PerWriter));
        audit.Events.Select(e => e.Seq).ShouldBe(Enumerable.Range(1, 1 + (3 * PerWriter)).Reverse().Select(i => (long)i));
        audit.Events.GroupBy(e => e.Actor).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}={g.Count()}")
            .ShouldBe(["child-a=100", "child-b=100", "parent=100", "test=1"]);
    }
}
