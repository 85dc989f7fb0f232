using Holdfast.Generation;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Tests.Generation;

/// <summary>The runner under leases: a run whose lease was taken over writes nothing more, and the session goes on.</summary>
public sealed class GenerationLeaseTests
{
    [Fact(Timeout = 120_000)]
    public async Task Run_LeaseTakenOverMidRun_OldRunWritesNothingMoreAndTheSessionCompletesExactly()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "30",
            ["Scripted:MaxTokens"] = "60",
            ["Cluster:LeaseDuration"] = "00:00:05",
            ["Cluster:RenewInterval"] = "00:00:00.500",
        });
        var request = GenerationTestHost.ScriptedRequest(seed: 51);
        var (session, _) = await host.Sessions.CreateAsync(request);
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 5, "some output");

        // Another instance on the same file does what a restarting node with this node's id would: it takes the lease
        // back (a new fencing token) and queues the session, while this process's run is still streaming.
        using (var database = new SqliteDatabase(host.Services.GetRequiredService<SqliteDatabase>().Path))
        {
            var other = new SqliteGenerationStore(database, TimeProvider.System);
            var taken = await other.RecoverAbandonedAsync(new RecoveryRequest(host.Runner.NodeId, TakeOwnLeasesBack: true, GenerationRecoveryPolicy.Auto));
            taken.ShouldHaveSingleItem().Session.Status.ShouldBe(GenerationStatus.Queued);
        }

        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed, TimeSpan.FromSeconds(60));
        var log = await host.Sessions.ReadLogAsync(session.Id, null, 0, 5000);

        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request), "the old run's later chunks were refused, the next run regenerated them");
        done.Attempts.ShouldBe(2);
        log.Select(e => e.Seq).ShouldBe(Enumerable.Range(1, log.Count).Select(i => (long)i), "no gap and no duplicate in the log");
        host.Logs.Entries.ShouldContain(e => e.EventId.Id == 3005 && e.Message.Contains(session.Id, StringComparison.Ordinal), "the lost lease is logged");
    }
}
