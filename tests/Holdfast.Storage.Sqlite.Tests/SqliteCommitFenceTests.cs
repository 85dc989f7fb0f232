using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Holdfast.Storage.Contract;
using static Holdfast.Storage.Contract.GenerationData;

namespace Holdfast.Storage.Sqlite.Tests;

/// <summary>
/// The group commit's fence is the output append itself (its row count), with a read only for a run that appended
/// nothing: a stale run is refused however its writes reach the commit, and a run that holds its session is not.
/// </summary>
public sealed class SqliteCommitFenceTests : IDisposable
{
    private readonly TempDirectory _data = new("hf-fence");
    private readonly ManualClock _clock = ManualClock.StartingNow();

    public void Dispose() => _data.Dispose();

    [Fact(Timeout = 30_000)]
    public async Task CommitAsync_StaleRunsEndingAlone_RefusedAndTheLiveRunsChunksNotStored()
    {
        // Arrange: gen_old's run lost its lease (recovered and claimed again); gen_live's run holds its session.
        using var database = await MigratedAsync();
        var store = new SqliteGenerationStore(database, _clock);
        var (old, current, live) = await TakeOverAsync(store);

        // Act: the stale run's ending with no chunk of it in the commit (only the read can tell).
        var lost = await Should.ThrowAsync<LeaseLostException>(() => store.CommitAsync(
            [new ChunkAppend("gen_live", live.Lease.FencingToken, live.Change.Session.LastSeq + 1, "live text")],
            [new RunFinish("gen_old", old.Lease.FencingToken, GenerationCommand.Complete, old.Change.Session.LastSeq)]));

        // Assert
        lost.SessionIds.ShouldBe(["gen_old"]);
        (await store.FindAsync("gen_live", null))!.Output.ShouldBeEmpty("the commit was refused whole");
        (await store.FindAsync("gen_old", null))!.Status.ShouldBe(GenerationStatus.Running, "the new holder's run goes on");
        current.Lease.FencingToken.ShouldBeGreaterThan(old.Lease.FencingToken);
    }

    [Fact(Timeout = 30_000)]
    public async Task CommitAsync_StaleRunsChunksOutOfOrder_RefusedNotSkipped()
    {
        // A stale run's chunk that would not follow the stored output either: refused as stale (not skipped as a gap).
        using var database = await MigratedAsync();
        var store = new SqliteGenerationStore(database, _clock);
        var (old, _, _) = await TakeOverAsync(store);

        var lost = await Should.ThrowAsync<LeaseLostException>(() => store.CommitAsync(
            [new ChunkAppend("gen_old", old.Lease.FencingToken, old.Change.Session.LastSeq + 5, "stale and late")],
            []));

        lost.SessionIds.ShouldBe(["gen_old"]);
        (await store.ReadDurableSeqAsync("gen_old")).ShouldBe((await store.FindAsync("gen_old", null))!.LastSeq);
    }

    [Fact(Timeout = 30_000)]
    public async Task CommitAsync_HolderAppendsAndEndsInOneCommit_StoredAndCompletedWithoutAStaleRead()
    {
        using var database = await MigratedAsync();
        var store = new SqliteGenerationStore(database, _clock);
        var (_, current, live) = await TakeOverAsync(store);
        var first = current.Change.Session.LastSeq + 1;

        var changes = await store.CommitAsync(
            [
                new ChunkAppend("gen_old", current.Lease.FencingToken, first, "new "),
                new ChunkAppend("gen_old", current.Lease.FencingToken, first + 1, "holder"),
                new ChunkAppend("gen_live", live.Lease.FencingToken, live.Change.Session.LastSeq + 1, "live"),
            ],
            [new RunFinish("gen_old", current.Lease.FencingToken, GenerationCommand.Complete, first + 1, FinishReason: "stop")]);

        changes.Single().Session.Status.ShouldBe(GenerationStatus.Completed);
        changes.Single().Session.Output.ShouldBe("new holder");
        (await store.FindAsync("gen_live", null))!.Output.ShouldBe("live");
    }

    /// <summary>gen_old claimed by node-a, recovered after its lease and claimed again by node-b; gen_live claimed by node-b.</summary>
    private async Task<(RunClaim Old, RunClaim Current, RunClaim Live)> TakeOverAsync(SqliteGenerationStore store)
    {
        await store.CreateAsync(NewSession("gen_old"), Alice);
        var old = (await store.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), c => new ClaimChoice(c.Id == "gen_old"))).Single();
        await store.CreateAsync(NewSession("gen_live"), Alice);
        _clock.Advance(Lease + TimeSpan.FromSeconds(1));
        await store.RecoverAbandonedAsync(new RecoveryRequest("node-b", TakeOwnLeasesBack: false, GenerationRecoveryPolicy.Auto));
        var claims = await store.ClaimRunnableAsync(new RunClaimRequest("node-b", Lease, 10), _ => new ClaimChoice(true));
        return (old, claims.Single(c => c.Lease.SessionId == "gen_old"), claims.Single(c => c.Lease.SessionId == "gen_live"));
    }

    private async Task<SqliteDatabase> MigratedAsync()
    {
        var database = new SqliteDatabase(_data.File("holdfast.db"), time: _clock);
        await database.MigrateAsync();
        return database;
    }
}
