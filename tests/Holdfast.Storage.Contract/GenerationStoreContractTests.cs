using Holdfast.Audit;
using Holdfast.Generation;
using Holdfast.Sessions;
using static Holdfast.Storage.Contract.GenerationData;

namespace Holdfast.Storage.Contract;

/// <summary>
/// The <see cref="IGenerationStore"/> contract (docs/storage-ports.md): idempotent creates, atomic changes (status, log
/// and audit together or not at all), log reads from any seq, compaction, fork and delete rules.
/// </summary>
public abstract class GenerationStoreContractTests(IStoreProvider provider) : StoreContractTests(provider)
{
    [Fact(Timeout = 60_000)]
    public async Task CreateAsync_FiveConcurrentStartsWithOneIdempotencyKey_OneSession()
    {
        var starts = Enumerable.Range(0, 5)
            .Select(i => Task.Run(() => Store.Generations.CreateAsync(NewSession($"gen_race{i}", key: "retry-1", hash: "same-request"), Alice)))
            .ToList();

        var results = await Task.WhenAll(starts);

        results.Select(r => r.Change.Session.Id).Distinct().Count().ShouldBe(1, "every retry gets the one session");
        results.Count(r => r.Created).ShouldBe(1);
        (await Store.Generations.ListAsync(new GenerationListQuery { Owner = "alice" })).Items.Count.ShouldBe(1);
        (await Store.Audit.ReadAuditAsync(SessionKind.Generation, results[0].Change.Session.Id)).Events.Count.ShouldBe(1);
    }

    [Fact(Timeout = 30_000)]
    public async Task CreateAsync_KeyReusedForAnotherRequest_ConflictAndNothingStored()
    {
        await Store.Generations.CreateAsync(NewSession("gen_a", key: "k1", hash: "request-a"), Alice);

        var conflict = await Should.ThrowAsync<SessionConflictException>(() => Store.Generations.CreateAsync(NewSession("gen_b", key: "k1", hash: "request-b"), Alice));

        conflict.Message.ShouldContain("k1");
        (await Store.Generations.FindAsync("gen_b", null)).ShouldBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task CreateAsync_New_QueuedWithStatusEventAndCreateAudit()
    {
        var result = await Store.Generations.CreateAsync(NewSession("gen_new"), Alice);

        result.Created.ShouldBeTrue();
        result.Change.Session.Status.ShouldBe(GenerationStatus.Queued);
        result.Change.Session.Version.ShouldBe(1);
        result.Change.StatusEvent!.Seq.ShouldBe(1);
        (await Store.Generations.ReadLogAfterAsync("gen_new", 0, 100)).Single().StatusChange!.Status.ShouldBe(GenerationStatus.Queued);
        (await Store.Audit.ReadAuditAsync(SessionKind.Generation, "gen_new")).Events.Single().Action.ShouldBe(AuditActions.Create);
    }

    [Fact(Timeout = 30_000)]
    public async Task ApplyControlAsync_AuditWriteFails_StatusLogAndAuditAllUnchanged()
    {
        await Store.Generations.CreateAsync(NewSession("gen_atomic"), Alice);
        var before = (await Store.Generations.FindAsync("gen_atomic", null))!;
        var logBefore = await Store.Generations.ReadLogAfterAsync("gen_atomic", 0, 100);
        var auditBefore = (await Store.Audit.ReadAuditAsync(SessionKind.Generation, "gen_atomic")).Events;

        await using (await Provider.FailAuditWritesAsync(Store))
        {
            await Should.ThrowAsync<HoldfastException>(() => Store.Generations.ApplyControlAsync("gen_atomic", null, GenerationCommand.Pause(), Alice, null));
        }

        var after = (await Store.Generations.FindAsync("gen_atomic", null))!;
        after.Status.ShouldBe(GenerationStatus.Queued);
        after.Version.ShouldBe(before.Version);
        after.LastSeq.ShouldBe(before.LastSeq);
        (await Store.Generations.ReadLogAfterAsync("gen_atomic", 0, 100)).ShouldBe(logBefore);
        (await Store.Audit.ReadAuditAsync(SessionKind.Generation, "gen_atomic")).Events.ShouldBe(auditBefore);

        // With the fault gone the same request goes through, all three together.
        var paused = await Store.Generations.ApplyControlAsync("gen_atomic", null, GenerationCommand.Pause(), Alice, null);
        paused.Session.Status.ShouldBe(GenerationStatus.Paused);
        (await Store.Generations.ReadLogAfterAsync("gen_atomic", 0, 100)).Count.ShouldBe(logBefore.Count + 1);
        (await Store.Audit.ReadAuditAsync(SessionKind.Generation, "gen_atomic")).Events.Count.ShouldBe(auditBefore.Count + 1);
    }

    [Fact(Timeout = 30_000)]
    public async Task ApplyControlAsync_StaleVersion_ConflictUnlessTheControlAlreadyHolds()
    {
        await Store.Generations.CreateAsync(NewSession("gen_cas"), Alice);
        var paused = await Store.Generations.ApplyControlAsync("gen_cas", null, GenerationCommand.Pause(), Alice, expectedVersion: 1);

        var stale = await Should.ThrowAsync<SessionConflictException>(() => Store.Generations.ApplyControlAsync("gen_cas", null, GenerationCommand.Resume, Alice, expectedVersion: 1));
        var again = await Store.Generations.ApplyControlAsync("gen_cas", null, GenerationCommand.Pause(), Alice, expectedVersion: 1);

        paused.Session.Version.ShouldBe(2);
        stale.Message.ShouldContain("version 1");
        again.Changed.ShouldBeFalse();
        again.Session.Version.ShouldBe(2);
    }

    [Fact(Timeout = 30_000)]
    public async Task ApplyControlAsync_OtherOwner_NotFound()
    {
        await Store.Generations.CreateAsync(NewSession("gen_owned"), Alice);

        await Should.ThrowAsync<SessionNotFoundException>(() => Store.Generations.ApplyControlAsync("gen_owned", "bob", GenerationCommand.Cancel, new Actor("bob"), null));
        (await Store.Generations.FindAsync("gen_owned", "bob")).ShouldBeNull();
        (await Store.Generations.ReadLogAsync("gen_owned", "bob", 0, 10)).ShouldBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task ReadLogAfterAsync_FromEverySeq_ExactlyTheStoredSuffixInOrder()
    {
        var chunks = new[] { "Hold", "fast ", "keeps ", "every ", "word." };
        var done = await CompletedSessionAsync(Store, "gen_follow", chunks);
        var whole = await Store.Generations.ReadLogAfterAsync("gen_follow", 0, 1000);

        for (long after = 0; after <= done.LastSeq; after++)
        {
            var suffix = await Store.Generations.ReadLogAfterAsync("gen_follow", after, 1000);
            suffix.Select(e => e.Seq).ShouldBe(Enumerable.Range((int)after + 1, (int)(done.LastSeq - after)).Select(i => (long)i), $"after seq {after}");
            suffix.ShouldBe(whole.Skip((int)after));
        }

        string.Concat(whole.Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(string.Concat(chunks));
        (await Store.Generations.ReadLogAfterAsync("gen_follow", 2, 2)).Select(e => e.Seq).ShouldBe([3L, 4L]);
        (await Store.Generations.ReadDurableSeqAsync("gen_follow")).ShouldBe(done.LastSeq);
        (await Store.Generations.ReadLogAfterAsync("gen_missing", 0, 10)).ShouldBeEmpty();
    }

    [Fact(Timeout = 30_000)]
    public async Task CompactFinishedLogsAsync_FinishedBeforeCutoff_OneChunkHoldsTheOutputStatusEventsStay()
    {
        var chunks = new[] { "a", "b", "c", "d" };
        var done = await CompletedSessionAsync(Store, "gen_compact", chunks);
        var statusBefore = (await Store.Generations.ReadLogAfterAsync("gen_compact", 0, 100)).Where(e => e.Type == GenerationLogEventType.Status).ToList();
        var lastChunkSeq = (await Store.Generations.ReadLogAfterAsync("gen_compact", 0, 100)).Last(e => e.Type == GenerationLogEventType.Chunk).Seq;

        (await Store.Generations.CompactFinishedLogsAsync(Clock.GetUtcNow().AddMinutes(-1), 10)).ShouldBe(0, "finished after the cutoff");
        Clock.Advance(TimeSpan.FromMinutes(5));
        var compacted = await Store.Generations.CompactFinishedLogsAsync(Clock.GetUtcNow().AddMinutes(-1), 10);
        var log = await Store.Generations.ReadLogAfterAsync("gen_compact", 0, 100);

        compacted.ShouldBe(1);
        log.Where(e => e.Type == GenerationLogEventType.Chunk).ShouldHaveSingleItem().ShouldBe(GenerationLogEvent.Chunk("gen_compact", lastChunkSeq, "abcd"));
        log.Where(e => e.Type == GenerationLogEventType.Status).ShouldBe(statusBefore);
        (await Store.Generations.ReadCompactedChunkSeqAsync("gen_compact")).ShouldBe(lastChunkSeq);
        var session = (await Store.Generations.FindAsync("gen_compact", null))!;
        session.LogCompacted.ShouldBeTrue();
        session.Output.ShouldBe("abcd");
        session.LastSeq.ShouldBe(done.LastSeq);
        (await Store.Audit.ReadAuditAsync(SessionKind.Generation, "gen_compact")).Events[0].Action.ShouldBe(AuditActions.CompactLog);
        (await Store.Generations.CompactFinishedLogsAsync(Clock.GetUtcNow(), 10)).ShouldBe(0, "compacted once");
        await Should.ThrowAsync<InvalidSessionInputException>(() => Store.Generations.ForkAsync("gen_compact", null, 2, "gen_fork_mid", Alice));
        (await Store.Generations.ForkAsync("gen_compact", null, null, "gen_fork_all", Alice)).Session.Output.ShouldBe("abcd");
    }

    [Fact(Timeout = 30_000)]
    public async Task ForkAsync_AtSeq_StartsQueuedWithTheParentsTextUpToIt()
    {
        await CompletedSessionAsync(Store, "gen_parent", ["one ", "two ", "three"]);

        // seq 1 queued, 2 running, 3..5 the chunks, 6 completed: forking at 4 takes "one two ".
        var fork = await Store.Generations.ForkAsync("gen_parent", "alice", 4, "gen_child", Alice);

        fork.Session.Status.ShouldBe(GenerationStatus.Queued);
        fork.Session.Output.ShouldBe("one two ");
        fork.Session.ForkedFrom.ShouldBe("gen_parent");
        fork.Session.ForkedAtSeq.ShouldBe(4);
        (await Store.Audit.ReadAuditAsync(SessionKind.Generation, "gen_child")).Events.Single().Action.ShouldBe(AuditActions.Fork);
        await Should.ThrowAsync<InvalidSessionInputException>(() => Store.Generations.ForkAsync("gen_parent", null, 99, "gen_child2", Alice));
    }

    [Fact(Timeout = 30_000)]
    public async Task DeleteAsync_RunningRefused_PausedDeletedWithItsLogAuditKept()
    {
        await Store.Generations.CreateAsync(NewSession("gen_del"), Alice);
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), _ => new ClaimChoice(true));

        await Should.ThrowAsync<SessionConflictException>(() => Store.Generations.DeleteAsync("gen_del", null, Alice));
        await Store.Generations.ApplyControlAsync("gen_del", null, GenerationCommand.Cancel, Alice, null);
        var lease = (await Store.Runs.RenewLeasesAsync("node-a", Lease)).Single();
        await Store.Runs.CommitAsync([], [new RunFinish("gen_del", lease.FencingToken, GenerationCommand.Stop, 2)]);
        await Store.Generations.DeleteAsync("gen_del", null, Alice);

        (await Store.Generations.FindAsync("gen_del", null)).ShouldBeNull();
        (await Store.Generations.ReadLogAfterAsync("gen_del", 0, 10)).ShouldBeEmpty();
        (await Store.Audit.ReadAuditAsync(SessionKind.Generation, "gen_del")).Events[0].Action.ShouldBe(AuditActions.Delete);
    }
}
