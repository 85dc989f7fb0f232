using Holdfast.Bots;
using Holdfast.Sessions;

namespace Holdfast.Storage.Contract;

/// <summary>
/// Bot leases across nodes (issue 11): one holder per bot session, a fencing epoch that grows with every claim, writes
/// of a stale holder refused, renewal, release and the stored key fingerprint; closed over every provider.
/// </summary>
public abstract class BotLeaseContractTests(IStoreProvider provider) : StoreContractTests(provider)
{
    private static readonly Actor Connector = Actor.System("connector:test");
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(10);

    private IBotStore Bots => Store.Bots;

    [Fact(Timeout = 30_000)]
    public async Task FencedWrites_AfterAnotherNodeTookTheLeaseOver_StaleEpochRejectedAndNothingChanged()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1", "bridge"), Connector);
        var first = (await Bots.ClaimLeaseAsync("bot1", "node-a", Lease))!;
        await Bots.SetQrAsync("bot1", "2@from-a", Connector, first);
        Clock.Advance(Lease + TimeSpan.FromSeconds(1));

        var second = (await Bots.ClaimLeaseAsync("bot1", "node-b", Lease))!;
        var before = (await Bots.FindAsync("bot1"))!;

        second.Epoch.ShouldBeGreaterThan(first.Epoch);
        await Should.ThrowAsync<LeaseLostException>(() => Bots.SetQrAsync("bot1", "2@stale", Connector, first));
        await Should.ThrowAsync<LeaseLostException>(() => Bots.RecordMessageAsync("bot1", "stale", null, Connector, first));
        await Should.ThrowAsync<LeaseLostException>(() => Bots.SetConnectionStateAsync("bot1", BotConnectionState.Connected, null, null, Connector, first));
        await Should.ThrowAsync<LeaseLostException>(() => Bots.SetConnectionAsync("bot1", "stale", Connector, first));
        await Should.ThrowAsync<LeaseLostException>(() => Bots.SaveAuthStateAsync("bot1", new byte[] { 1, 2, 3 }, Connector, first));
        (await Bots.FindAsync("bot1")).ShouldBe(before, "no stale write changed the row");
        (await Bots.LoadAuthStateAsync("bot1")).ShouldBeNull();

        var written = await Bots.SetQrAsync("bot1", "2@from-b", Connector, second);
        written.QrData.ShouldBe("2@from-b");
        written.Holder.ShouldBe(new Cluster.LeaseHolder("node-b", second.Epoch, second.ExpiresAt));
        (await Bots.RenewLeasesAsync("node-a", Lease)).ShouldBeEmpty("node-a lost it");
        (await Bots.RenewLeasesAsync("node-b", Lease)).Select(l => (l.SessionId, l.Epoch)).ShouldBe([("bot1", second.Epoch)]);
    }

    [Fact(Timeout = 30_000)]
    public async Task ClaimLeaseAsync_LiveLeaseOfAnotherNode_RefusedUntilReleasedOrExpired_EndClearsTheHolder()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1", "bridge"), Connector);
        await Bots.StartOrReactivateAsync(new StartBotSession("bot2", "bridge"), Connector);
        (await Bots.ListClaimableAsync("node-b", 10)).ShouldBe(["bot1", "bot2"]);

        var a = (await Bots.ClaimLeaseAsync("bot1", "node-a", Lease))!;
        var refused = await Bots.ClaimLeaseAsync("bot1", "node-b", Lease);
        var claimable = await Bots.ListClaimableAsync("node-b", 10);
        var again = (await Bots.ClaimLeaseAsync("bot1", "node-a", Lease))!;
        var released = await Bots.ReleaseLeasesAsync("node-a");
        var afterRelease = await Bots.FindAsync("bot1");
        var b = (await Bots.ClaimLeaseAsync("bot1", "node-b", Lease))!;
        var ended = await Bots.EndAsync("bot1", Connector);

        refused.ShouldBeNull();
        claimable.ShouldBe(["bot2"]);
        again.Epoch.ShouldBeGreaterThan(a.Epoch, "every claim grows the epoch");
        released.ShouldBe(["bot1"]);
        afterRelease!.Holder.ShouldBeNull();
        b.Epoch.ShouldBeGreaterThan(again.Epoch);
        ended.Holder.ShouldBeNull();
        (await Bots.ClaimLeaseAsync("bot1", "node-b", Lease)).ShouldBeNull("an ended session is not held");
        await Should.ThrowAsync<LeaseLostException>(() => Bots.SetQrAsync("bot1", null, Connector, b));
    }

    [Fact(Timeout = 30_000)]
    public async Task StartWithLease_HeldFromTheStart_AParkedStateReleasesIt()
    {
        var started = await Bots.StartOrReactivateAsync(new StartBotSession("bot1", "bridge"), Connector, new BotLeaseRequest("node-a", Lease));
        var claimedByB = await Bots.ClaimLeaseAsync("bot1", "node-b", Lease);
        var claimableForB = await Bots.ListClaimableAsync("node-b", 10);
        var again = await Bots.StartOrReactivateAsync(new StartBotSession("bot1", "bridge"), Connector, new BotLeaseRequest("node-b", Lease));
        var loadOfA = await Bots.ReadLeaseLoadAsync("node-a", Lease);
        var parked = await Bots.SetConnectionStateAsync("bot1", BotConnectionState.Failed, "connecting failed", null, Connector, started.Lease);

        started.Outcome.ShouldBe(BotStartOutcome.Created);
        var lease = started.Lease.ShouldNotBeNull();
        lease.NodeId.ShouldBe("node-a");
        started.Session.Holder.ShouldBe(new Cluster.LeaseHolder("node-a", lease.Epoch, lease.ExpiresAt));
        claimedByB.ShouldBeNull("held since its start");
        claimableForB.ShouldBeEmpty();
        again.Outcome.ShouldBe(BotStartOutcome.AlreadyActive);
        again.Lease.ShouldBeNull("an active session is not taken by a start");
        loadOfA.HeldByNode.ShouldBe(1);
        parked.Holder.ShouldBeNull("a parked bot is not pinned to a node");
        (await Bots.RenewLeasesAsync("node-a", Lease)).ShouldBeEmpty();
        (await Bots.ClaimLeaseAsync("bot1", "node-b", Lease)).ShouldNotBeNull("any node may take it again");
    }

    [Fact(Timeout = 30_000)]
    public async Task EnsureSettingAsync_FirstValueWins()
    {
        (await Bots.EnsureSettingAsync(BotStoreSettings.AuthKeyFingerprint, "first")).ShouldBe("first");
        (await Bots.EnsureSettingAsync(BotStoreSettings.AuthKeyFingerprint, "second")).ShouldBe("first");
    }
}
