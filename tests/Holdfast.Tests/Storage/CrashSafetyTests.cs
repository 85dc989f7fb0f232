using Holdfast.Bots;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Xunit.Abstractions;

namespace Holdfast.Tests.Storage;

/// <summary>A real child process writes through the store and is killed with SIGKILL at random moments.</summary>
[Collection(ResourceHeavyCollection.Name)]
public sealed class CrashSafetyTests
{
    private readonly ITestOutputHelper _output;

    public CrashSafetyTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact(Timeout = 600_000)]
    public async Task BotWrites_ChildKilledWithSigkill20Times_IntegrityOkAndEveryReportedWritePresent()
    {
        using var temp = new TempDirectory();
        var databasePath = temp.File("holdfast.db");
        var random = new Random();
        var reported = new List<string>();
        const int Rounds = 20;

        for (var round = 0; round < Rounds; round++)
        {
            using var child = TestChildProcess.Start("bot-writes", databasePath, $"r{round}");
            await child.WaitForLinesAsync(1); // "ready": migrations done
            var target = 1 + random.Next(2, 60);
            await child.WaitForLinesAsync(target);
            var lines = await child.KillAsync();
            var writes = lines.Where(l => l != "ready").ToList();
            reported.AddRange(writes);

            var check = await SqliteMaintenance.CheckAsync(databasePath);
            check.IntegrityErrors.ShouldBeEmpty($"round {round}");
            check.Migrations.Problems.ShouldBeEmpty($"round {round}");
            await AssertAllPresentAsync(databasePath, reported, round);
            _output.WriteLine($"round {round}: killed after {writes.Count} reported writes");
        }

        reported.Count.ShouldBeGreaterThanOrEqualTo(Rounds * 2);
    }

    internal static async Task AssertAllPresentAsync(string databasePath, IEnumerable<string> reportedWrites, int round = -1)
    {
        using var database = new SqliteDatabase(databasePath);
        var store = new SqliteBotStore(database, TimeProvider.System);
        foreach (var line in reportedWrites)
        {
            var parts = line.Split(' ');
            var session = await store.FindAsync(parts[1]);
            session.ShouldNotBeNull($"round {round}: reported '{line}' but the session is missing");
            if (parts[0] == "message")
            {
                session.LastMessage.ShouldBe($"payload {parts[1]}", $"round {round}: reported '{line}' but the message is missing");
            }
        }
    }
}
