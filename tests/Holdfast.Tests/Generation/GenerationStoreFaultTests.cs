using Holdfast.Generation;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Tests.Generation;

/// <summary>
/// The store fails under a live runner: another connection (as another process would, e.g. the sqlite3 shell or a
/// backup tool) holds the database's write lock past the busy timeout and the group-commit retry limit.
/// </summary>
[Collection(Holdfast.Tests.Storage.ResourceHeavyCollection.Name)]
public sealed class GenerationStoreFaultTests
{
    [Fact(Timeout = 120_000)]
    public async Task Run_StoreLockedPastCommitRetryLimit_SessionHandedBackThenCompletesWithExactText()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Storage:BusyTimeout"] = "00:00:00.050",
            ["Generation:CommitRetryLimit"] = "00:00:00.300",
            ["Scripted:TokensPerSecond"] = "15", // 60 tokens in 4 s: the run is surely still going when the lock is taken
            ["Scripted:MaxTokens"] = "60",

            // The lock outlasts the default 10 s lease (renewals fail too); this test is about the hand-back, not about
            // the expired-lease recovery that would otherwise take the session first.
            ["Cluster:LeaseDuration"] = "00:02:00",
            ["Cluster:RenewInterval"] = "00:00:30",
        });
        var request = GenerationTestHost.ScriptedRequest(seed: 41);
        var (session, _) = await host.Sessions.CreateAsync(request);
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 5, "some output");
        GenerationSession orphaned;

        await using (var blocker = new SqliteConnection($"Data Source={host.Services.GetRequiredService<SqliteDatabase>().Path};Pooling=False"))
        {
            await blocker.OpenAsync();
            await ExecuteAsync(blocker, "BEGIN IMMEDIATE");

            // Nothing can be written now: the run streams on, its chunks and then its ending are given up, and the
            // session is handed back (its slot freed, its ending kept for the dispatcher).
            await Poll.UntilAsync(
                () => Task.FromResult(!host.Runner.IsRunning(session.Id) && host.Runner.HandedBackCount == 1),
                "the run to end and be handed back",
                TimeSpan.FromSeconds(60));
            orphaned = await host.Sessions.GetAsync(session.Id, null);
            await ExecuteAsync(blocker, "ROLLBACK");
        }

        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed, TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(() => Task.FromResult(host.Runner.HandedBackCount == 0), "the hand-back to be written");
        var audit = await host.Sessions.ReadAuditAsync(session.Id, null);
        var running = await host.Sessions.ListAsync(new GenerationListQuery { Status = GenerationStatus.Running });

        orphaned.Status.ShouldBe(GenerationStatus.Running, "the store could not be told while it was locked");
        orphaned.Output.Length.ShouldBeLessThan(done.Output.Length);
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request), "the chunks lost with the given-up commits were regenerated");
        done.Attempts.ShouldBe(2, "a run whose chunks were lost is re-queued instead of completing with a gap");
        audit.Events.ShouldContain(e => e.Action == "interrupt" && e.Detail != null && e.Detail.Contains("output lost", StringComparison.Ordinal));
        running.Items.ShouldBeEmpty();
        host.Logs.Entries.ShouldContain(e => e.EventId.Id == 3103, "the given-up group commit is logged");
        host.Logs.Entries.ShouldContain(e => e.EventId.Id == 3007 && e.Message.Contains(session.Id, StringComparison.Ordinal), "the hand-back is logged");
        host.Logs.Entries.ShouldContain(e => e.EventId.Id == 3008 && e.Message.Contains(session.Id, StringComparison.Ordinal), "the written hand-back is logged");
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
