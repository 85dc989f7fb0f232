using Holdfast.Generation;
using Holdfast.Sessions;
using static Holdfast.Storage.Contract.GenerationData;

namespace Holdfast.Storage.Contract;

/// <summary>
/// The <see cref="IRunStore"/> contract (docs/storage-ports.md, "Runs, leases and fencing"): claims under a lease,
/// exactly once across nodes; writes fenced by the lease epoch; recovery of expired leases only; a restarting node
/// taking its own leases back; gap handling.
/// </summary>
public abstract class RunStoreContractTests(IStoreProvider provider) : StoreContractTests(provider)
{
    [Fact(Timeout = 120_000)]
    public async Task ClaimRunnableAsync_TwoNodesOnOneDatabase_EachSessionClaimedExactlyOnce()
    {
        for (var i = 0; i < 30; i++)
        {
            await Store.Generations.CreateAsync(NewSession($"gen_{i:D3}"), Alice);
        }

        await using var second = await Provider.OpenSameStoreAsync(Store, Clock);
        var claimedA = new List<RunClaim>();
        var claimedB = new List<RunClaim>();

        // Both nodes claim a few at a time, at once, until nothing is left.
        await Task.WhenAll(ClaimAllAsync(Store.Runs, "node-a", claimedA), ClaimAllAsync(second.Runs, "node-b", claimedB));

        var all = claimedA.Concat(claimedB).Select(c => c.Lease.SessionId).ToList();
        all.Count.ShouldBe(30);
        all.Distinct().Count().ShouldBe(30, "no session is claimed twice");
        claimedA.ShouldAllBe(c => c.Lease.NodeId == "node-a");
        (await Store.Generations.ListAsync(new GenerationListQuery { Status = GenerationStatus.Running, Limit = 100 })).Items.Count.ShouldBe(30);
        foreach (var claim in claimedA.Concat(claimedB))
        {
            claim.Change.Session.Attempts.ShouldBe(1);
            claim.Lease.ExpiresAt.ShouldBe(Clock.GetUtcNow() + Lease);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task ClaimRunnableAsync_OffersTheClusterLoad_LiveNodesOnlyAndAStoppingNodeNotCounted()
    {
        for (var i = 0; i < 6; i++)
        {
            await Store.Generations.CreateAsync(NewSession($"gen_{i:D3}"), Alice);
        }

        // node-b holds two, node-dead one (and stops renewing), node-c one; node-a holds none yet.
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-b", Lease, 10), c => new ClaimChoice(c.Id is "gen_000" or "gen_001"));
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-dead", Lease, 10), c => new ClaimChoice(c.Id == "gen_002"));
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-c", Lease, 10), c => new ClaimChoice(c.Id == "gen_003"));
        await Store.Runs.RenewLeasesAsync("node-dead", Lease);
        Clock.Advance(Lease / 2);
        await Store.Runs.RenewLeasesAsync("node-b", Lease);
        await Store.Runs.RenewLeasesAsync("node-c", Lease);
        await Store.Runs.RenewLeasesAsync("node-a", Lease);
        Clock.Advance((Lease / 2) + TimeSpan.FromSeconds(1));

        var offered = new List<ClaimCandidate>();
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), c => { offered.Add(c); return ClaimChoice.Skip; });

        offered.Select(c => c.Id).ShouldBe(["gen_004", "gen_005"]);
        offered.ShouldAllBe(c => c.Load == new ClaimLoad(2, 3, 0), "node-b (2) and node-c (1) are live; node-dead's heartbeat is older than the lease");
        offered.ShouldAllBe(c => c.QueuedSince < Clock.GetUtcNow());

        // node-c stops gracefully: marked stopped, and its renewals during the handover keep the mark.
        await Store.Runs.MarkNodeStoppedAsync("node-c");
        await Store.Runs.RenewLeasesAsync("node-c", Lease, stopping: true);
        offered.Clear();
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), c => { offered.Add(c); return ClaimChoice.Skip; });
        offered.ShouldAllBe(c => c.Load == new ClaimLoad(1, 2, 0), "a stopping node is not counted");
        (await Store.Runs.ListNodesAsync()).Single(n => n.NodeId == "node-c").StoppedAt.ShouldNotBeNull();

        // Started again, its first renewal clears the mark.
        await Store.Runs.RenewLeasesAsync("node-c", Lease);
        (await Store.Runs.ListNodesAsync()).Single(n => n.NodeId == "node-c").StoppedAt.ShouldBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task CommitAsync_StaleFencingToken_RejectedAndNothingOfTheCommitWritten()
    {
        await Store.Generations.CreateAsync(NewSession("gen_old"), Alice);
        await Store.Generations.CreateAsync(NewSession("gen_live"), Alice);
        var old = (await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), c => new ClaimChoice(c.Id == "gen_old"))).Single();

        // node-a stalls past its lease; node-b recovers the session and claims it again: a new epoch.
        Clock.Advance(Lease + TimeSpan.FromSeconds(1));
        await using var nodeB = await Provider.OpenSameStoreAsync(Store, Clock);
        await nodeB.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-b", TakeOwnLeasesBack: false, GenerationRecoveryPolicy.Auto));
        var claims = await nodeB.Runs.ClaimRunnableAsync(new RunClaimRequest("node-b", Lease, 10), _ => new ClaimChoice(true));
        var current = claims.Single(c => c.Lease.SessionId == "gen_old");
        var live = claims.Single(c => c.Lease.SessionId == "gen_live");
        var before = (await Store.Generations.FindAsync("gen_old", null))!;
        var liveBefore = (await Store.Generations.FindAsync("gen_live", null))!;

        // The stale run's chunk and ending, in one commit with a live run's chunk.
        var lost = await Should.ThrowAsync<LeaseLostException>(() => Store.Runs.CommitAsync(
            [
                new ChunkAppend("gen_old", old.Lease.FencingToken, before.LastSeq + 1, "stale text"),
                new ChunkAppend("gen_live", live.Lease.FencingToken, liveBefore.LastSeq + 1, "live text"),
            ],
            [new RunFinish("gen_old", old.Lease.FencingToken, GenerationCommand.Complete, before.LastSeq + 1)]));

        current.Lease.FencingToken.ShouldBeGreaterThan(old.Lease.FencingToken);
        lost.SessionIds.ShouldBe(["gen_old"]);
        Facts(await Store.Generations.FindAsync("gen_old", null)).ShouldBe(Facts(before), "nothing of the stale run was written");
        Facts(await Store.Generations.FindAsync("gen_live", null)).ShouldBe(Facts(liveBefore), "the commit was refused whole");
        (await Store.Generations.ReadDurableSeqAsync("gen_old")).ShouldBe(before.LastSeq);

        // The current holder's writes go through.
        var written = await nodeB.Runs.CommitAsync(
            [new ChunkAppend("gen_old", current.Lease.FencingToken, before.LastSeq + 1, "fresh text")],
            [new RunFinish("gen_old", current.Lease.FencingToken, GenerationCommand.Complete, before.LastSeq + 1, FinishReason: "stop")]);
        written.Single().Session.Status.ShouldBe(GenerationStatus.Completed);
        written.Single().Session.Output.ShouldBe("fresh text");
    }

    [Fact(Timeout = 30_000)]
    public async Task ControlThenRunEnd_TextFromEarlierCommits_EveryAnswerHoldsTheWholeText()
    {
        // Arrange: a running session whose text came in three earlier group commits.
        await Store.Generations.CreateAsync(NewSession("gen_tail"), Alice);
        var claim = (await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), c => new ClaimChoice(c.Id == "gen_tail"))).Single();
        var token = claim.Lease.FencingToken;
        var seq = claim.Change.Session.LastSeq;
        foreach (var text in new[] { "one ", "two ", "three " })
        {
            await Store.Runs.CommitAsync([new ChunkAppend("gen_tail", token, ++seq, text)], []);
        }

        // Act: a pause request, one more chunk, then the run's ending.
        var paused = await Store.Generations.ApplyControlAsync("gen_tail", null, GenerationCommand.Pause(), Alice, null);
        await Store.Runs.CommitAsync([new ChunkAppend("gen_tail", token, ++seq, "four ")], []);
        var ended = (await Store.Runs.CommitAsync([], [new RunFinish("gen_tail", token, GenerationCommand.Stop, seq)])).Single();

        // Assert
        paused.Session.DesiredState.ShouldBe(GenerationDesiredState.Paused);
        paused.Session.Output.ShouldBe("one two three ");
        ended.Session.Status.ShouldBe(GenerationStatus.Paused);
        ended.Session.Output.ShouldBe("one two three four ");
        (await Store.Generations.FindAsync("gen_tail", null)).ShouldNotBeNull().Output.ShouldBe("one two three four ");
    }

    [Fact(Timeout = 30_000)]
    public async Task RecoverAbandonedAsync_ExpiredLeasesTakenLiveOnesLeftAlone()
    {
        await Store.Generations.CreateAsync(NewSession("gen_dead"), Alice);
        await Store.Generations.CreateAsync(NewSession("gen_alive"), Alice);
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-dead", Lease, 10), c => new ClaimChoice(c.Id == "gen_dead"));
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-alive", Lease, 10), c => new ClaimChoice(c.Id == "gen_alive"));

        Clock.Advance(TimeSpan.FromSeconds(6));
        await Store.Runs.RenewLeasesAsync("node-alive", Lease);
        Clock.Advance(TimeSpan.FromSeconds(6));
        var recovered = await Store.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-other", TakeOwnLeasesBack: true, GenerationRecoveryPolicy.Auto));

        recovered.Select(c => c.Session.Id).ShouldBe(["gen_dead"]);
        recovered[0].Session.Status.ShouldBe(GenerationStatus.Queued);
        (await Store.Generations.FindAsync("gen_alive", null))!.Status.ShouldBe(GenerationStatus.Running);
        (await Store.Runs.RenewLeasesAsync("node-alive", Lease)).Select(l => l.SessionId).ShouldBe(["gen_alive"]);
        (await Store.Runs.RenewLeasesAsync("node-dead", Lease)).ShouldBeEmpty();
    }

    [Fact(Timeout = 30_000)]
    public async Task RecoverAbandonedAsync_NodeRestartingWithItsId_TakesItsLiveLeasesBackAtOnce()
    {
        await Store.Generations.CreateAsync(NewSession("gen_mine"), Alice);
        await Store.Generations.CreateAsync(NewSession("gen_theirs"), Alice);
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), c => new ClaimChoice(c.Id == "gen_mine"));
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-b", Lease, 10), c => new ClaimChoice(c.Id == "gen_theirs"));
        await Store.Generations.ApplyControlAsync("gen_mine", null, GenerationCommand.Pause(), Alice, null);

        var periodic = await Store.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-a", TakeOwnLeasesBack: false, GenerationRecoveryPolicy.Manual));
        var restart = await Store.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-a", TakeOwnLeasesBack: true, GenerationRecoveryPolicy.Manual));

        periodic.ShouldBeEmpty("no lease has expired");
        restart.Select(c => c.Session.Id).ShouldBe(["gen_mine"]);
        restart[0].Session.Status.ShouldBe(GenerationStatus.Paused, "the pause acknowledged before the restart is honoured");
        restart[0].Session.PauseReason.ShouldBe("user");
        (await Store.Generations.FindAsync("gen_theirs", null))!.Status.ShouldBe(GenerationStatus.Running);
    }

    [Fact(Timeout = 30_000)]
    public async Task RecoverAbandonedAsync_SweepOfTheLiveHolder_LeavesItsOwnExpiredLeaseForItsRenewal()
    {
        await Store.Generations.CreateAsync(NewSession("gen_late"), Alice);
        var claim = (await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), _ => new ClaimChoice(true))).Single();
        Clock.Advance(Lease + TimeSpan.FromSeconds(1));

        // node-a is alive (it sweeps): a late renewal of its own must not make it re-run its own session.
        var own = await Store.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-a", TakeOwnLeasesBack: false, GenerationRecoveryPolicy.Auto));
        var renewed = await Store.Runs.RenewLeasesAsync("node-a", Lease);
        var other = await Store.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-b", TakeOwnLeasesBack: false, GenerationRecoveryPolicy.Auto));

        own.ShouldBeEmpty();
        renewed.Select(l => (l.SessionId, l.FencingToken)).ShouldBe([("gen_late", claim.Lease.FencingToken)]);
        other.ShouldBeEmpty("the lease was renewed before it was taken");
    }

    [Fact(Timeout = 30_000)]
    public async Task RecoverAbandonedAsync_ManualPolicy_PausedInterrupted()
    {
        await Store.Generations.CreateAsync(NewSession("gen_manual"), Alice);
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), _ => new ClaimChoice(true));
        Clock.Advance(Lease + Lease);

        var recovered = (await Store.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-b", TakeOwnLeasesBack: false, GenerationRecoveryPolicy.Manual))).Single();

        recovered.Session.Status.ShouldBe(GenerationStatus.Paused);
        recovered.Session.PauseReason.ShouldBe(GenerationStateMachine.InterruptedPauseReason);
    }

    [Fact(Timeout = 30_000)]
    public async Task CommitAsync_CompleteOverAGap_InterruptedAndRequeuedNeverCompletedWithAHole()
    {
        await Store.Generations.CreateAsync(NewSession("gen_gap"), Alice);
        var claim = (await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), _ => new ClaimChoice(true))).Single();
        var token = claim.Lease.FencingToken;
        var next = claim.Change.Session.LastSeq + 1;

        // The commit holding `next` was given up: the later chunks do not follow the stored log and are skipped.
        var changes = await Store.Runs.CommitAsync(
            [new ChunkAppend("gen_gap", token, next + 1, "later"), new ChunkAppend("gen_gap", token, next + 2, " text")],
            [new RunFinish("gen_gap", token, GenerationCommand.Complete, next + 2, FinishReason: "stop")]);

        var session = changes.Single().Session;
        session.Status.ShouldBe(GenerationStatus.Queued);
        session.Output.ShouldBeEmpty();
        (await Store.Generations.ReadLogAfterAsync("gen_gap", claim.Change.Session.LastSeq, 10)).ShouldAllBe(e => e.Type == GenerationLogEventType.Status);
        var audit = await Store.Audit.ReadAuditAsync(SessionKind.Generation, "gen_gap");
        audit.Events[0].Action.ShouldBe("interrupt");
        audit.Events[0].Detail.ShouldNotBeNull().ShouldContain("output lost");
    }

    [Fact(Timeout = 30_000)]
    public async Task ListStopRequestedAsync_RunningWithDesiredStop_OnlyTheHoldersOwn()
    {
        await Store.Generations.CreateAsync(NewSession("gen_stop_a"), Alice);
        await Store.Generations.CreateAsync(NewSession("gen_stop_b"), Alice);
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), c => new ClaimChoice(c.Id == "gen_stop_a"));
        await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-b", Lease, 10), c => new ClaimChoice(c.Id == "gen_stop_b"));
        await Store.Generations.ApplyControlAsync("gen_stop_a", null, GenerationCommand.Cancel, Alice, null);
        await Store.Generations.ApplyControlAsync("gen_stop_b", null, GenerationCommand.Pause(), Alice, null);

        (await Store.Runs.ListStopRequestedAsync("node-a")).ShouldBe(["gen_stop_a"]);
        (await Store.Runs.ListStopRequestedAsync("node-b")).ShouldBe(["gen_stop_b"]);
        (await Store.Runs.ListStopRequestedAsync("node-c")).ShouldBeEmpty();
    }

    [Fact(Timeout = 30_000)]
    public async Task RenewLeasesAsync_ExtendsTheNodesLeasesSoRecoveryLeavesThem()
    {
        await Store.Generations.CreateAsync(NewSession("gen_renew"), Alice);
        var claim = (await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), _ => new ClaimChoice(true))).Single();

        Clock.Advance(TimeSpan.FromSeconds(8));
        var renewed = await Store.Runs.RenewLeasesAsync("node-a", Lease);
        Clock.Advance(TimeSpan.FromSeconds(8));
        var recovered = await Store.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-b", TakeOwnLeasesBack: false, GenerationRecoveryPolicy.Auto));

        renewed.ShouldHaveSingleItem().ShouldBe(claim.Lease with { ExpiresAt = claim.Lease.ExpiresAt + TimeSpan.FromSeconds(8) });
        recovered.ShouldBeEmpty();
        (await Store.Runs.RenewLeasesAsync("node-b", Lease)).ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task CommitAsync_LongRunInManyCommits_EveryReadReturnsTheWholeTextBeforeAndAfterEachFold()
    {
        // 700 chunks in commits of 35: the stores fold the log's tail into the row only every 256 events and at status
        // changes (SQLite 0014, PostgreSQL 0015), so most reads below meet a tail of chunk rows after the folded text.
        await Store.Generations.CreateAsync(NewSession("gen_long"), Alice);
        var claim = (await Store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), _ => new ClaimChoice(true))).Single();
        var token = claim.Lease.FencingToken;
        var seq = claim.Change.Session.LastSeq;
        var expected = new System.Text.StringBuilder();
        var forks = 0;
        for (var commit = 0; commit < 20; commit++)
        {
            var appends = Enumerable.Range(0, 35).Select(i => new ChunkAppend("gen_long", token, ++seq, $"c{commit}.{i} ")).ToList();
            await Store.Runs.CommitAsync(appends, []);
            expected.Append(string.Concat(appends.Select(a => a.Text)));
            var whole = expected.ToString();

            (await Store.Generations.FindAsync("gen_long", "alice"))!.Output.ShouldBe(whole, $"find after commit {commit} ({seq} events)");
            (await Store.Generations.ListAsync(new GenerationListQuery { Status = GenerationStatus.Running, Limit = 10 })).Items.Single().Output.ShouldBe(whole, $"list after commit {commit}");
            if (commit % 7 == 6)
            {
                // A fork of the running session takes the whole text, or the text up to a seq before the last fold.
                (await Store.Generations.ForkAsync("gen_long", "alice", null, $"gen_fork_{forks++}", Alice)).Session.Output.ShouldBe(whole);
                (await Store.Generations.ForkAsync("gen_long", "alice", claim.Change.Session.LastSeq + 35, $"gen_fork_{forks++}", Alice)).Session.Output
                    .ShouldBe(string.Concat(Enumerable.Range(0, 35).Select(i => $"c0.{i} ")));
                var exported = new List<StoreRecord>();
                await foreach (var record in Store.Administration.ExportAsync())
                {
                    exported.Add(record);
                }

                var row = exported.Single(r => r.Table == "generation_sessions" && (string?)r.Values["id"] == "gen_long");
                row.Values["output"].ShouldBe(whole, "an export holds the whole text");
                row.Values.ContainsKey("output_seq").ShouldBeFalse("the fold mark stays inside the store");
            }
        }

        // A control that changes no status (a pause asked of a running session), then more chunks, then the ending.
        (await Store.Generations.ApplyControlAsync("gen_long", "alice", GenerationCommand.Pause(), Alice, null)).Session.Output.ShouldBe(expected.ToString());
        var last = new ChunkAppend("gen_long", token, ++seq, "the end");
        expected.Append(last.Text);
        (await Store.Generations.FindAsync("gen_long", null))!.Output.ShouldBe(expected.ToString()[..^last.Text.Length], "not yet committed");
        var ended = await Store.Runs.CommitAsync([last], [new RunFinish("gen_long", token, GenerationCommand.Complete, seq, FinishReason: "stop")]);

        ended.Single().Session.Status.ShouldBe(GenerationStatus.Completed, "the run finished its text before it saw the pause");
        ended.Single().Session.Output.ShouldBe(expected.ToString());
        var stored = (await Store.Generations.FindAsync("gen_long", null))!;
        stored.Output.ShouldBe(expected.ToString());
        stored.Usage.OutputTokens.ShouldBe(20 * 35 + 1);
        var log = await Store.Generations.ReadLogAfterAsync("gen_long", 0, 10_000);
        string.Concat(log.Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(stored.Output, "the row and the log agree");
    }

    /// <summary>What a write changes on a session row.</summary>
    private static (GenerationStatus, long, long, string, int, DateTimeOffset) Facts(GenerationSession? session) =>
        (session!.Status, session.Version, session.LastSeq, session.Output, session.Attempts, session.UpdatedAt);

    private static async Task ClaimAllAsync(IRunStore runs, string node, List<RunClaim> claimed)
    {
        while (true)
        {
            var batch = await runs.ClaimRunnableAsync(new RunClaimRequest(node, Lease, 3), _ => new ClaimChoice(true));
            if (batch.Count == 0)
            {
                return;
            }

            claimed.AddRange(batch);
            await Task.Yield();
        }
    }
}
