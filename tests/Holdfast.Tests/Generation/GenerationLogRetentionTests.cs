using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Holdfast.Tests.Generation;

/// <summary>Generation:LogRetention: chunk rows of finished sessions merged after a while; the text stays whole.</summary>
public sealed class GenerationLogRetentionTests
{
    [Fact(Timeout = 30_000)]
    public async Task LogRetention_Default_IsUnsetSoChunkRowsAreKeptUntilDeleted()
    {
        await using var host = await GenerationTestHost.StartAsync(startRunner: false);

        host.Services.GetRequiredService<IOptions<GenerationOptions>>().Value.LogRetention.ShouldBeNull();
    }

    [Fact(Timeout = 60_000)]
    public async Task LogRetention_Elapsed_ChunkRowsMergedOutputAndFollowStillWhole()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Generation:LogRetention"] = "00:00:00.300" });
        var request = GenerationTestHost.ScriptedRequest(seed: 51);
        var (session, _) = await host.Sessions.CreateAsync(request);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);
        var before = await host.Sessions.ReadLogAsync(session.Id, null, 0, 5000);

        var after = await Poll.UntilAsync(
            () => host.Sessions.ReadLogAsync(session.Id, null, 0, 5000),
            log => log.Count(e => e.Type == GenerationLogEventType.Chunk) == 1,
            "the chunk rows to be merged");
        var followed = new List<GenerationLogEvent>();
        await foreach (var e in host.Sessions.FollowAsync(session.Id, "alice"))
        {
            followed.Add(e);
        }

        var reread = await host.Sessions.GetAsync(session.Id, null);
        var audit = await host.Sessions.ReadAuditAsync(session.Id, null);
        var forkWhole = await host.Sessions.ForkAsync(session.Id, GenerationTestHost.Alice, "alice");
        var forkMiddle = await Should.ThrowAsync<InvalidSessionInputException>(
            () => host.Sessions.ForkAsync(session.Id, GenerationTestHost.Alice, "alice", atSeq: done.LastSeq / 2));
        var mergedSeq = after.Single(e => e.Type == GenerationLogEventType.Chunk).Seq;
        var followMiddle = await Should.ThrowAsync<InvalidSessionInputException>(async () =>
        {
            await foreach (var e in host.Sessions.FollowAsync(session.Id, "alice", mergedSeq / 2))
            {
            }
        });
        var followAfterMerged = new List<GenerationLogEvent>();
        await foreach (var e in host.Sessions.FollowAsync(session.Id, "alice", mergedSeq))
        {
            followAfterMerged.Add(e);
        }

        before.Count(e => e.Type == GenerationLogEventType.Chunk).ShouldBe(60);
        after.Where(e => e.Type == GenerationLogEventType.Status).ShouldBe(before.Where(e => e.Type == GenerationLogEventType.Status), "status events stay");
        after.Single(e => e.Type == GenerationLogEventType.Chunk).Text.ShouldBe(done.Output);
        after.Single(e => e.Type == GenerationLogEventType.Chunk).Seq.ShouldBe(before.Last(e => e.Type == GenerationLogEventType.Chunk).Seq);
        string.Concat(followed.Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(GenerationTestHost.ExpectedText(request));
        followed[^1].StatusChange!.Status.ShouldBe(GenerationStatus.Completed);
        (reread.Output, reread.Version, reread.Status).ShouldBe((done.Output, done.Version, GenerationStatus.Completed), "the materialized output and the session stay");
        audit.Events.ShouldContain(e => e.Action == "compact_log" && e.Detail != null && e.Detail.Contains("60 chunk events merged into one", StringComparison.Ordinal), string.Join("; ", audit.Events.Select(e => $"{e.Action}|{e.Actor}|{e.Detail}")));
        forkWhole.Output.ShouldBe(done.Output);
        forkWhole.Usage.OutputTokens.ShouldBe(60);
        forkMiddle.Field.ShouldBe("at_seq");
        forkMiddle.Message.ShouldContain("compacted");
        followMiddle.Field.ShouldBe("after", "resuming inside the merged chunk would repeat text: refused, never duplicated");
        followMiddle.Message.ShouldContain("compacted");
        followAfterMerged.ShouldNotContain(e => e.Type == GenerationLogEventType.Chunk);
        followAfterMerged[^1].StatusChange!.Status.ShouldBe(GenerationStatus.Completed);
    }

    [Fact(Timeout = 60_000)]
    public async Task CompactFinishedLogsAsync_PausedOrJustFinishedSessions_LeftWhole()
    {
        // 60 tokens at 20 tokens/s: the paused session is surely still running when the pause arrives.
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "20" });
        var store = host.Services.GetRequiredService<SqliteGenerationStore>();
        var (paused, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest("paused", seed: 52));
        await Poll.UntilAsync(() => host.Sessions.GetAsync(paused.Id, null), s => s.Usage.OutputTokens >= 5, "some output");
        var pausedNow = await host.Sessions.PauseAsync(paused.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        var (completed, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest("completed", seed: 53, maxTokens: 10));
        var done = await host.WaitForStatusAsync(completed.Id, GenerationStatus.Completed);

        var recent = await store.CompactFinishedLogsAsync(done.CompletedAt!.Value, 100);
        var due = await store.CompactFinishedLogsAsync(DateTimeOffset.UtcNow.AddDays(1), 100);
        var again = await store.CompactFinishedLogsAsync(DateTimeOffset.UtcNow.AddDays(1), 100);
        var pausedLog = await host.Sessions.ReadLogAsync(paused.Id, null, 0, 5000);
        var completedLog = await host.Sessions.ReadLogAsync(completed.Id, null, 0, 5000);

        pausedNow.Status.ShouldBe(GenerationStatus.Paused);
        recent.ShouldBe(0, "finished exactly at the cutoff, not before it");
        due.ShouldBe(1);
        again.ShouldBe(0, "a compacted session is not compacted again");
        pausedLog.Count(e => e.Type == GenerationLogEventType.Chunk).ShouldBeGreaterThanOrEqualTo(5, "a paused session can still be resumed; its log stays whole");
        completedLog.Count(e => e.Type == GenerationLogEventType.Chunk).ShouldBe(1);
        completedLog.Single(e => e.Type == GenerationLogEventType.Chunk).Text.ShouldBe(done.Output);
    }
}
