using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;

namespace Holdfast.Tests.Bots;

/// <summary>
/// The <see cref="IBotStore"/> contract, written once and closed over every provider
/// (<see cref="SqliteBotStoreTests"/>; PostgreSQL later). Each test gets a fresh, empty, migrated store.
/// </summary>
public abstract class BotStoreContractTests : IAsyncLifetime
{
    protected static readonly Actor Alice = new("alice");

    protected IBotStore Store { get; private set; } = null!;

    protected IAuditLog Audit { get; private set; } = null!;

    /// <summary>Creates a fresh, migrated, empty store and the audit log over the same database.</summary>
    protected abstract Task<(IBotStore Store, IAuditLog Audit)> CreateStoreAsync();

    /// <summary>Releases what <see cref="CreateStoreAsync"/> made.</summary>
    protected abstract Task DisposeStoreAsync();

    public async Task InitializeAsync() => (Store, Audit) = await CreateStoreAsync();

    public Task DisposeAsync() => DisposeStoreAsync();

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_NewId_CreatesActiveSessionWithOneAuditEvent()
    {
        var result = await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        result.Outcome.ShouldBe(BotStartOutcome.Created);
        result.Session.SessionId.ShouldBe("bot1");
        result.Session.Status.ShouldBe(BotSessionStatus.Active);
        result.Session.BotType.ShouldBe("web");
        result.Session.QrData.ShouldBeNull();
        result.Session.LastMessage.ShouldBeNull();
        result.Session.Version.ShouldBe(1);
        var audit = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1");
        audit.Events.Count.ShouldBe(1);
        audit.Events[0].Action.ShouldBe("bot.created");
        audit.Events[0].Actor.ShouldBe("alice");
        audit.Events[0].FromState.ShouldBeNull();
        audit.Events[0].ToState.ShouldBe("active");
    }

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_EndedSession_ReactivatesKeepingLastMessageAndAuthState()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        await Store.RecordMessageAsync("bot1", "hello", Alice);
        await Store.SaveAuthStateAsync("bot1", new byte[] { 1, 2, 3 }, Alice);
        await Store.EndAsync("bot1", Alice);

        var result = await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        result.Outcome.ShouldBe(BotStartOutcome.Reactivated);
        result.Session.Status.ShouldBe(BotSessionStatus.Active);
        result.Session.LastMessage.ShouldBe("hello");
        (await Store.LoadAuthStateAsync("bot1")).ShouldBe(new byte[] { 1, 2, 3 });
        var audit = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1");
        audit.Events[0].Action.ShouldBe("bot.reactivated");
        audit.Events[0].FromState.ShouldBe("inactive");
        audit.Events[0].ToState.ShouldBe("active");
    }

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_AlreadyActive_ChangesNothing()
    {
        var first = await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        var again = await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        again.Outcome.ShouldBe(BotStartOutcome.AlreadyActive);
        again.Session.ShouldBe(first.Session);
        (await Audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events.Count.ShouldBe(1);
    }

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_ActiveAsAnotherBotType_ThrowsConflictAndChangesNothing()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1", "bridge"), Alice);

        var ex = await Should.ThrowAsync<SessionConflictException>(() => Store.StartOrReactivateAsync(new StartBotSession("bot1", "web"), Alice));

        ex.Message.ShouldContain("bridge");
        (await Store.FindAsync("bot1"))!.BotType.ShouldBe("bridge");
    }

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_IdOwnedByAnotherUser_ThrowsBotIdUnavailable()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "alice"), Alice);
        await Store.EndAsync("bot1", Alice);

        await Should.ThrowAsync<BotIdUnavailableException>(() => Store.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "bob"), new Actor("bob")));

        var session = await Store.FindAsync("bot1");
        session!.Status.ShouldBe(BotSessionStatus.Inactive);
        session.Owner.ShouldBe("alice");
    }

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_OwnerlessSessionWithAnOwner_ThrowsBotIdUnavailable_NotAdopted()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        await Store.EndAsync("bot1", Alice);
        var before = await Store.FindAsync("bot1");

        await Should.ThrowAsync<BotIdUnavailableException>(() => Store.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "bob"), new Actor("bob")));

        (await Store.FindAsync("bot1")).ShouldBe(before);
        var reactivated = await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        reactivated.Session.Owner.ShouldBeNull("a start without an owner keeps the session as it is");
    }

    [Fact(Timeout = 30_000)]
    public async Task AssignOwnerAsync_SetsOwner_AuditsOnce_RepeatIsNoOp()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        var assigned = await Store.AssignOwnerAsync("bot1", "bob", new Actor("root"));
        var again = await Store.AssignOwnerAsync("bot1", "bob", new Actor("root"));

        assigned.Owner.ShouldBe("bob");
        assigned.Version.ShouldBe(2);
        again.ShouldBe(assigned);
        var audit = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1");
        audit.Events.Count(e => e.Action == "bot.owner").ShouldBe(1);
        audit.Events.ShouldContain(e => e.Action == "bot.owner" && e.Actor == "root" && e.Detail == "owner none -> bob");
        (await Store.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "bob"), new Actor("bob"))).Outcome.ShouldBe(BotStartOutcome.AlreadyActive);
        await Should.ThrowAsync<SessionNotFoundException>(() => Store.AssignOwnerAsync("nope", "bob", new Actor("root")));
    }

    [Fact(Timeout = 30_000)]
    public async Task SetQrAsync_ActiveSession_StoresQrAndIncrementsVersion()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        var updated = await Store.SetQrAsync("bot1", "qr-1", Alice);
        var repeated = await Store.SetQrAsync("bot1", "qr-1", Alice);

        updated.QrData.ShouldBe("qr-1");
        updated.Version.ShouldBe(2);
        repeated.Version.ShouldBe(2);
        (await Store.FindAsync("bot1"))!.QrData.ShouldBe("qr-1");
        (await Audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events.Select(e => e.Action).ShouldBe(["bot.qr", "bot.created"]);
    }

    [Fact(Timeout = 30_000)]
    public async Task SetQrAsync_InactiveSession_ThrowsConflictAndChangesNothing()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        var ended = await Store.EndAsync("bot1", Alice);

        await Should.ThrowAsync<SessionConflictException>(() => Store.SetQrAsync("bot1", "qr", Alice));
        await Should.ThrowAsync<SessionConflictException>(() => Store.RecordMessageAsync("bot1", "hi", Alice));

        (await Store.FindAsync("bot1")).ShouldBe(ended);
    }

    [Fact(Timeout = 30_000)]
    public async Task RecordMessageAsync_UnknownSession_ThrowsNotFound()
    {
        var ex = await Should.ThrowAsync<SessionNotFoundException>(() => Store.RecordMessageAsync("nobody", "hi", Alice));

        ex.SessionId.ShouldBe("nobody");
        (await Store.FindAsync("nobody")).ShouldBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task RecordMessageAsync_ActiveSession_StoresLastMessageAndTime()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        await Store.RecordMessageAsync("bot1", "first", Alice);
        var second = await Store.RecordMessageAsync("bot1", "second ünïcødé", Alice);

        second.LastMessage.ShouldBe("second ünïcødé");
        second.LastMessageAt.ShouldNotBeNull();
        second.Version.ShouldBe(3);
        (await Store.FindAsync("bot1"))!.LastMessage.ShouldBe("second ünïcødé");
    }

    [Fact(Timeout = 30_000)]
    public async Task EndAsync_ActiveSession_SetsInactiveClearsQrAndRepeatingChangesNothing()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        await Store.SetQrAsync("bot1", "qr", Alice);
        await Store.SetConnectionAsync("bot1", "connected", Alice);

        var ended = await Store.EndAsync("bot1", Alice);
        var again = await Store.EndAsync("bot1", Alice);

        ended.Status.ShouldBe(BotSessionStatus.Inactive);
        ended.QrData.ShouldBeNull();
        again.ShouldBe(ended);
        var audit = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1");
        audit.Events.Count.ShouldBe(4);
        audit.Events[0].Action.ShouldBe("bot.ended");
        audit.Events[0].FromState.ShouldBe("active");
        audit.Events[0].ToState.ShouldBe("inactive");
    }

    [Fact(Timeout = 30_000)]
    public async Task ListAsync_StatusAndOwnerFilters_PagesInIdOrder()
    {
        for (var i = 0; i < 7; i++)
        {
            await Store.StartOrReactivateAsync(new StartBotSession($"bot{i}", Owner: i % 2 == 0 ? "alice" : "bob"), Alice);
        }

        await Store.EndAsync("bot3", Alice);

        var first = await Store.ListAsync(new BotListQuery(Limit: 3));
        var second = await Store.ListAsync(new BotListQuery(After: first.NextCursor, Limit: 3));
        var third = await Store.ListAsync(new BotListQuery(After: second.NextCursor, Limit: 3));
        var active = await Store.ListAsync(new BotListQuery(BotSessionStatus.Active, Limit: 100));
        var bobs = await Store.ListAsync(new BotListQuery(Owner: "bob", Limit: 100));

        first.Items.Select(s => s.SessionId).ShouldBe(["bot0", "bot1", "bot2"]);
        second.Items.Select(s => s.SessionId).ShouldBe(["bot3", "bot4", "bot5"]);
        third.Items.Select(s => s.SessionId).ShouldBe(["bot6"]);
        third.NextCursor.ShouldBeNull();
        active.Items.Count.ShouldBe(6);
        active.Items.ShouldNotContain(s => s.SessionId == "bot3");
        bobs.Items.Select(s => s.SessionId).ShouldBe(["bot1", "bot3", "bot5"]);
    }

    [Fact(Timeout = 30_000)]
    public async Task SaveAuthStateAsync_BlobAndNull_RoundTripsAndAuditsSizeOnly()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        var blob = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();

        await Store.SaveAuthStateAsync("bot1", blob, Alice);
        var loaded = await Store.LoadAuthStateAsync("bot1");
        await Store.SaveAuthStateAsync("bot1", null, Alice);

        loaded.ShouldBe(blob);
        (await Store.LoadAuthStateAsync("bot1")).ShouldBeNull();
        var audit = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1");
        audit.Events[1].Action.ShouldBe("bot.auth_state");
        audit.Events[1].Detail.ShouldBe("auth state stored (300 bytes, encrypted)");
        await Should.ThrowAsync<SessionNotFoundException>(() => Store.LoadAuthStateAsync("nobody"));
    }

    [Fact(Timeout = 120_000)]
    public async Task ConcurrentWrites_OneSession_EveryWriteCountedNoneLost()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        const int PerKind = 50;

        var writes = Enumerable.Range(0, PerKind).SelectMany(i => new Func<Task>[]
        {
            () => Store.RecordMessageAsync("bot1", $"message {i}", Alice),
            () => Store.SetQrAsync("bot1", $"qr {i}", Alice),
        });
        await Task.WhenAll(writes.Select(write => Task.Run(write)));

        var session = await Store.FindAsync("bot1");
        session!.Version.ShouldBe(1 + (2 * PerKind));
        var audit = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1", limit: 1000);
        audit.Events.Count.ShouldBe(1 + (2 * PerKind));
        audit.Events.Count(e => e.Action == "bot.message").ShouldBe(PerKind);
        audit.Events.Count(e => e.Action == "bot.qr").ShouldBe(PerKind);
        audit.Events.Select(e => e.Seq).ShouldBe(Enumerable.Range(1, 1 + (2 * PerKind)).Reverse().Select(i => (long)i));
    }

    [Theory(Timeout = 30_000)]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData(".hidden")]
    [InlineData("slash/in/id")]
    public async Task StartOrReactivateAsync_BadId_RejectedNamingTheRuleAndNothingStored(string id)
    {
        var ex = await Should.ThrowAsync<InvalidSessionInputException>(() => Store.StartOrReactivateAsync(new StartBotSession(id), Alice));

        ex.Field.ShouldBe("session_id");
        ex.Message.ShouldContain("session_id");
        (await Store.ListAsync(new BotListQuery())).Items.ShouldBeEmpty();
    }

    [Fact(Timeout = 30_000)]
    public async Task Writes_OversizedPayloads_RejectedNamingTheLimitAndNothingChanged()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        var before = await Store.FindAsync("bot1");

        var message = await Should.ThrowAsync<InvalidSessionInputException>(() => Store.RecordMessageAsync("bot1", new string('x', BotLimits.MaxMessageBytes + 1), Alice));
        var qr = await Should.ThrowAsync<InvalidSessionInputException>(() => Store.SetQrAsync("bot1", new string('q', BotLimits.MaxQrBytes + 1), Alice));
        var tooLongId = await Should.ThrowAsync<InvalidSessionInputException>(() => Store.RecordMessageAsync(new string('a', 129), "hi", Alice));
        var authState = await Should.ThrowAsync<InvalidSessionInputException>(() =>
            Store.SaveAuthStateAsync("bot1", new byte[BotLimits.MaxAuthStateBytes + BotLimits.AuthStateEnvelopeBytes + 1], Alice));

        message.Message.ShouldContain("65536 bytes");
        qr.Message.ShouldContain("2953 bytes");
        tooLongId.Message.ShouldContain("128");
        authState.Message.ShouldContain("the limit is 1048576 bytes (1 MiB)");
        (await Store.FindAsync("bot1")).ShouldBe(before);
        (await Audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events.Count.ShouldBe(1);
    }

    [Fact(Timeout = 30_000)]
    public async Task RecordMessageAsync_MessageExactlyAtLimit_IsAccepted()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        var session = await Store.RecordMessageAsync("bot1", new string('x', BotLimits.MaxMessageBytes), Alice);

        session.LastMessage!.Length.ShouldBe(BotLimits.MaxMessageBytes);
    }

    [Fact(Timeout = 30_000)]
    public async Task ReadAuditAsync_ManyEvents_NewestFirstPagedByBeforeSeq()
    {
        await Store.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        for (var i = 0; i < 9; i++)
        {
            await Store.RecordMessageAsync("bot1", $"m{i}", new Actor("alice", "testing"));
        }

        var first = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1", limit: 4);
        var second = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1", first.NextBeforeSeq, limit: 4);
        var third = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1", second.NextBeforeSeq, limit: 4);

        first.Events.Select(e => e.Seq).ShouldBe([10L, 9L, 8L, 7L]);
        second.Events.Select(e => e.Seq).ShouldBe([6L, 5L, 4L, 3L]);
        third.Events.Select(e => e.Seq).ShouldBe([2L, 1L]);
        third.NextBeforeSeq.ShouldBeNull();
        first.Events[0].Detail.ShouldBe("testing (2 characters)");
        (await Audit.ReadAuditAsync(SessionKind.Bot, "nobody")).Events.ShouldBeEmpty();
    }
}
