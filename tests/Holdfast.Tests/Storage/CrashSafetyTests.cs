using System.Globalization;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Xunit.Abstractions;

namespace Holdfast.Tests.Storage;

/// <summary>
/// A real child process writes through the store and is killed with SIGKILL at random moments: after a random number
/// of reported writes, and after a random time (wherever it is then: mid-transaction, mid-fsync, between writes).
/// The seed is printed and named in every failure; rerun one with <c>HOLDFAST_CRASH_SEED=N</c>.
/// </summary>
[Collection(ResourceHeavyCollection.Name)]
public sealed class CrashSafetyTests
{
    private const string SeedVariable = "HOLDFAST_CRASH_SEED";

    private readonly ITestOutputHelper _output;

    public CrashSafetyTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact(Timeout = 600_000)]
    public async Task BotWrites_ChildKilledWithSigkillAfterRandomWritesAndRandomTimes_IntegrityOkAndEveryReportedWritePresent()
    {
        using var temp = new TempDirectory();
        var databasePath = temp.File("holdfast.db");
        var seed = int.TryParse(Environment.GetEnvironmentVariable(SeedVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var fixedSeed)
            ? fixedSeed
            : Random.Shared.Next();
        _output.WriteLine($"seed {seed} (rerun with {SeedVariable}={seed})");
        var random = new Random(seed);
        const int KillsAfterWrites = 12;
        const int KillsAfterTime = 12;
        var plan = Enumerable.Repeat(true, KillsAfterWrites).Concat(Enumerable.Repeat(false, KillsAfterTime)).OrderBy(_ => random.Next()).ToList();
        var reported = new List<string>();
        var reportedInTimedRounds = 0;

        for (var round = 0; round < plan.Count; round++)
        {
            using var child = TestChildProcess.Start("bot-writes", databasePath, $"r{round}");
            await child.WaitForLinesAsync(1); // "ready": migrations done
            string how;
            if (plan[round])
            {
                var target = 1 + random.Next(2, 60);
                await child.WaitForLinesAsync(target);
                how = $"killed after {target - 1} reported writes";
            }
            else
            {
                var delay = TimeSpan.FromMilliseconds(random.Next(0, 400));

                // Not a wait for state: the kill itself lands at a random time, wherever the child is.
                await Task.Delay(delay);
                how = $"killed {delay.TotalMilliseconds:0} ms after ready";
            }

            child.HasExited.ShouldBeFalse($"seed {seed}, round {round}: the child stopped by itself: {child.Errors}");
            var lines = await child.KillAsync();
            var writes = lines.Where(l => l != "ready").ToList();
            reported.AddRange(writes);
            if (!plan[round])
            {
                reportedInTimedRounds += writes.Count;
            }

            var context = $"seed {seed}, round {round} ({how})";
            var check = await SqliteMaintenance.CheckAsync(databasePath);
            check.IntegrityErrors.ShouldBeEmpty(context);
            check.Migrations.Problems.ShouldBeEmpty(context);
            await AssertAllPresentAsync(databasePath, reported, context);
            _output.WriteLine($"round {round}: {how}; {writes.Count} writes reported");
        }

        _output.WriteLine($"{plan.Count} rounds, {reported.Count} reported writes ({reportedInTimedRounds} in timed rounds), all present");
        reported.Count.ShouldBeGreaterThanOrEqualTo(KillsAfterWrites * 2, $"seed {seed}");
    }

    /// <summary>Every write in <paramref name="reportedWrites"/> (lines of the <c>bot-writes</c> child) is in the database.</summary>
    internal static async Task AssertAllPresentAsync(string databasePath, IEnumerable<string> reportedWrites, string context = "")
    {
        using var database = new SqliteDatabase(databasePath);
        var store = new SqliteBotStore(database, TimeProvider.System);
        foreach (var line in reportedWrites)
        {
            var parts = line.Split(' ');
            var session = await store.FindAsync(parts[1]);
            session.ShouldNotBeNull($"{context}: reported '{line}' but the session is missing");
            if (parts[0] == "message")
            {
                session.LastMessage.ShouldBe($"payload {parts[1]}", $"{context}: reported '{line}' but the message is missing");
            }
        }
    }
}
