using System.Net;
using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Server.Tests;

/// <summary>What the server says when the database file goes bad underneath it.</summary>
public sealed class StoreHealthTests
{
    [Fact(Timeout = 120_000)]
    public async Task Readyz_PageFoundDamagedWhileRunning_503NamingTheFileAndRestoreAndRequests503Not500()
    {
        // Arrange: 24 bots whose 48 KB messages fill most of the file with overflow pages.
        using var data = new TempDirectory("hf-damage");
        var databasePath = Path.Combine(data.Path, "holdfast.db");
        using (var database = new SqliteDatabase(databasePath))
        {
            await database.MigrateAsync();
            var store = new SqliteBotStore(database, TimeProvider.System);
            for (var i = 0; i < 24; i++)
            {
                await store.StartOrReactivateAsync(new StartBotSession($"bot{i:00}", "bridge"), new Actor("seed"));
                await store.RecordMessageAsync($"bot{i:00}", new string((char)('a' + i), 48 * 1024), new Actor("seed"));
            }
        }

        SqliteConnection.ClearAllPools();
        // No restore: restoring the 24 active bots claims their leases, which rewrites their rows into the WAL, and a
        // read then finds the pages there, not in the damaged main file (CI saw all 24 answer 200 once).
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Bots:RestoreOnStart"] = "false" }, data.Path);
        using var client = server.Socket();
        (await client.GetAsync("/readyz")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // Act: three pages in the middle of the file (message overflow pages, not read yet) are overwritten.
        await using (var file = new FileStream(databasePath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            var middle = file.Length / 2 / 4096 * 4096;
            file.Position = middle;
            await file.WriteAsync(Enumerable.Repeat((byte)0x5A, 3 * 4096).ToArray());
        }

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 24; i++)
        {
            using var response = await client.GetAsync($"/api/v1/bots/bot{i:00}");
            statuses.Add(response.StatusCode);
        }

        // Assert: the damaged rows answer 503 (not 500), and readiness says why, naming the file and the way out.
        statuses.ShouldContain(HttpStatusCode.ServiceUnavailable, string.Join(", ", statuses));
        statuses.ShouldNotContain(HttpStatusCode.InternalServerError);
        using var ready = await client.GetAsync("/readyz");
        var problem = await ready.ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
        problem.Detail!.ShouldContain(databasePath);
        problem.Detail!.ShouldContain("holdfast restore");
        (await client.GetAsync("/healthz")).StatusCode.ShouldBe(HttpStatusCode.OK, "alive, just not ready");
    }
}
