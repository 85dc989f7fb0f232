using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;

namespace Holdfast.Storage.Contract;

/// <summary>
/// The <see cref="IBotStore"/> contract, written once and closed over every provider (<c>SqliteBotStoreTests</c>,
/// <c>PostgresBotStoreTests</c>). Each test gets a fresh, empty, migrated store.
/// </summary>
public abstract class BotStoreContractTests(IStoreProvider provider) : StoreContractTests(provider)
{
    protected static readonly Actor Alice = new("alice");

    private IBotStore Bots => Store.Bots;

    private IAuditLog Audit => Store.Audit;

    [Fact(Timeout = 30_000)]
    public async Task DesignRecordFlow_LookupOnStartQrAndMessageUpdatesEnd_InactiveWithQrClearedAndRestartReactivates()
    {
        // bot_sessions as the design record uses it: a start looks the session up (creates it the first time), every
        // new QR code and every received message updates it, ending sets inactive and clears the QR.
        var first = await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        await Bots.SetQrAsync("bot1", "2@qr-one", Alice);
        await Bots.SetQrAsync("bot1", "2@qr-two", Alice);
        var withMessage = await Bots.RecordMessageAsync("bot1", "hello", Alice);
        var ended = await Bots.EndAsync("bot1", Alice);
        var lookedUp = await Bots.FindAsync("bot1");
        var again = await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        first.Outcome.ShouldBe(BotStartOutcome.Created);
        withMessage.QrData.ShouldBe("2@qr-two");
        withMessage.LastMessage.ShouldBe("hello");
        ended.Status.ShouldBe(BotSessionStatus.Inactive);
        ended.QrData.ShouldBeNull();
        ended.LastMessage.ShouldBe("hello");
        lookedUp.ShouldBe(ended);
        again.Outcome.ShouldBe(BotStartOutcome.Reactivated);
        again.Session.LastMessage.ShouldBe("hello");
        (await Bots.ListAsync(new BotListQuery(BotSessionStatus.Active))).Items.Select(b => b.SessionId).ShouldBe(["bot1"]);
        (await Audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events.Select(e => e.Action).Reverse().ShouldBe(
            ["bot.created", "bot.qr", "bot.qr", "bot.message", "bot.ended", "bot.reactivated"]);
    }

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_NewId_CreatesActiveSessionWithOneAuditEvent()
    {
        var result = await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

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
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        await Bots.RecordMessageAsync("bot1", "hello", Alice);
        await Bots.SaveAuthStateAsync("bot1", new byte[] { 1, 2, 3 }, Alice);
        await Bots.EndAsync("bot1", Alice);

        var result = await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        result.Outcome.ShouldBe(BotStartOutcome.Reactivated);
        result.Session.Status.ShouldBe(BotSessionStatus.Active);
        result.Session.LastMessage.ShouldBe("hello");
        (await Bots.LoadAuthStateAsync("bot1")).ShouldBe(new byte[] { 1, 2, 3 });
        var audit = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1");
        audit.Events[0].Action.ShouldBe("bot.reactivated");
        audit.Events[0].FromState.ShouldBe("inactive");
        audit.Events[0].ToState.ShouldBe("active");
    }

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_AlreadyActive_ChangesNothing()
    {
        var first = await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        var again = await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        again.Outcome.ShouldBe(BotStartOutcome.AlreadyActive);
        again.Session.ShouldBe(first.Session);
        (await Audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events.Count.ShouldBe(1);
    }

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_ActiveAsAnotherBotType_ThrowsConflictAndChangesNothing()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1", "bridge"), Alice);

        var ex = await Should.ThrowAsync<SessionConflictException>(() => Bots.StartOrReactivateAsync(new StartBotSession("bot1", "web"), Alice));

        ex.Message.ShouldContain("bridge");
        (await Bots.FindAsync("bot1"))!.BotType.ShouldBe("bridge");
    }

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_IdOwnedByAnotherUser_ThrowsBotIdUnavailable()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "alice"), Alice);
        await Bots.EndAsync("bot1", Alice);

        await Should.ThrowAsync<BotIdUnavailableException>(() => Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "bob"), new Actor("bob")));

        var session = await Bots.FindAsync("bot1");
        session!.Status.ShouldBe(BotSessionStatus.Inactive);
        session.Owner.ShouldBe("alice");
    }

    [Fact(Timeout = 30_000)]
    public async Task StartOrReactivateAsync_OwnerlessSessionWithAnOwner_ThrowsBotIdUnavailable_NotAdopted()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        await Bots.EndAsync("bot1", Alice);
        var before = await Bots.FindAsync("bot1");

        await Should.ThrowAsync<BotIdUnavailableException>(() => Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "bob"), new Actor("bob")));

        (await Bots.FindAsync("bot1")).ShouldBe(before);
        var reactivated = await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        reactivated.Session.Owner.ShouldBeNull("a start without an owner keeps the session as it is");
    }

    [Fact(Timeout = 30_000)]
    public async Task AssignOwnerAsync_SetsOwner_AuditsOnce_RepeatIsNoOp()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        var assigned = await Bots.AssignOwnerAsync("bot1", "bob", new Actor("root"));
        var again = await Bots.AssignOwnerAsync("bot1", "bob", new Actor("root"));

        assigned.Owner.ShouldBe("bob");
        assigned.Version.ShouldBe(2);
        again.ShouldBe(assigned);
        var audit = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1");
        audit.Events.Count(e => e.Action == "bot.owner").ShouldBe(1);
        audit.Events.ShouldContain(e => e.Action == "bot.owner" && e.Actor == "root" && e.Detail == "owner none -> bob");
        (await Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "bob"), new Actor("bob"))).Outcome.ShouldBe(BotStartOutcome.AlreadyActive);
        await Should.ThrowAsync<SessionNotFoundException>(() => Bots.AssignOwnerAsync("nope", "bob", new Actor("root")));
    }

    [Fact(Timeout = 30_000)]
    public async Task SetQrAsync_ActiveSession_StoresQrAndIncrementsVersion()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        var updated = await Bots.SetQrAsync("bot1", "qr-1", Alice);
        var repeated = await Bots.SetQrAsync("bot1", "qr-1", Alice);

        updated.QrData.ShouldBe("qr-1");
        updated.Version.ShouldBe(2);
        repeated.Version.ShouldBe(2);
        (await Bots.FindAsync("bot1"))!.QrData.ShouldBe("qr-1");
        (await Audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events.Select(e => e.Action).ShouldBe(["bot.qr", "bot.created"]);
    }

    [Fact(Timeout = 30_000)]
    public async Task SetQrAsync_InactiveSession_ThrowsConflictAndChangesNothing()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        var ended = await Bots.EndAsync("bot1", Alice);

        await Should.ThrowAsync<SessionConflictException>(() => Bots.SetQrAsync("bot1", "qr", Alice));
        await Should.ThrowAsync<SessionConflictException>(() => Bots.RecordMessageAsync("bot1", "hi", Alice));

        (await Bots.FindAsync("bot1")).ShouldBe(ended);
    }

    [Fact(Timeout = 30_000)]
    public async Task RecordMessageAsync_UnknownSession_ThrowsNotFound()
    {
        var ex = await Should.ThrowAsync<SessionNotFoundException>(() => Bots.RecordMessageAsync("nobody", "hi", Alice));

        ex.SessionId.ShouldBe("nobody");
        (await Bots.FindAsync("nobody")).ShouldBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task RecordMessageAsync_ActiveSession_StoresLastMessageAndTime()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        await Bots.RecordMessageAsync("bot1", "first", Alice);
        var second = await Bots.RecordMessageAsync("bot1", "second ünïcødé", Alice);

        second.LastMessage.ShouldBe("second ünïcødé");
        second.LastMessageAt.ShouldNotBeNull();
        second.Version.ShouldBe(3);
        (await Bots.FindAsync("bot1"))!.LastMessage.ShouldBe("second ünïcødé");
    }

    [Fact(Timeout = 30_000)]
    public async Task EndAsync_ActiveSession_SetsInactiveClearsQrAndRepeatingChangesNothing()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        await Bots.SetQrAsync("bot1", "qr", Alice);
        await Bots.SetConnectionAsync("bot1", "connected", Alice);

        var ended = await Bots.EndAsync("bot1", Alice);
        var again = await Bots.EndAsync("bot1", Alice);

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
            await Bots.StartOrReactivateAsync(new StartBotSession($"bot{i}", Owner: i % 2 == 0 ? "alice" : "bob"), Alice);
        }

        await Bots.EndAsync("bot3", Alice);

        var first = await Bots.ListAsync(new BotListQuery(Limit: 3));
        var second = await Bots.ListAsync(new BotListQuery(After: first.NextCursor, Limit: 3));
        var third = await Bots.ListAsync(new BotListQuery(After: second.NextCursor, Limit: 3));
        var active = await Bots.ListAsync(new BotListQuery(BotSessionStatus.Active, Limit: 100));
        var bobs = await Bots.ListAsync(new BotListQuery(Owner: "bob", Limit: 100));

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
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        var blob = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();

        await Bots.SaveAuthStateAsync("bot1", blob, Alice);
        var loaded = await Bots.LoadAuthStateAsync("bot1");
        await Bots.SaveAuthStateAsync("bot1", null, Alice);

        loaded.ShouldBe(blob);
        (await Bots.LoadAuthStateAsync("bot1")).ShouldBeNull();
        var audit = await Audit.ReadAuditAsync(SessionKind.Bot, "bot1");
        audit.Events[1].Action.ShouldBe("bot.auth_state");
        audit.Events[1].Detail.ShouldBe("auth state stored (300 bytes, encrypted)");
        await Should.ThrowAsync<SessionNotFoundException>(() => Bots.LoadAuthStateAsync("nobody"));
    }

    [Fact(Timeout = 120_000)]
    public async Task ConcurrentWrites_OneSession_EveryWriteCountedNoneLost()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        const int PerKind = 50;

        var writes = Enumerable.Range(0, PerKind).SelectMany(i => new Func<Task>[]
        {
            () => Bots.RecordMessageAsync("bot1", $"message {i}", Alice),
            () => Bots.SetQrAsync("bot1", $"qr {i}", Alice),
        });
        await Task.WhenAll(writes.Select(write => Task.Run(write)));

        var session = await Bots.FindAsync("bot1");
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
        var ex = await Should.ThrowAsync<InvalidSessionInputException>(() => Bots.StartOrReactivateAsync(new StartBotSession(id), Alice));

        ex.Field.ShouldBe("session_id");
        ex.Message.ShouldContain("session_id");
        (await Bots.ListAsync(new BotListQuery())).Items.ShouldBeEmpty();
    }

    [Fact(Timeout = 30_000)]
    public async Task Writes_OversizedPayloads_RejectedNamingTheLimitAndNothingChanged()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        var before = await Bots.FindAsync("bot1");

        var message = await Should.ThrowAsync<InvalidSessionInputException>(() => Bots.RecordMessageAsync("bot1", new string('x', BotLimits.MaxMessageBytes + 1), Alice));
        var qr = await Should.ThrowAsync<InvalidSessionInputException>(() => Bots.SetQrAsync("bot1", new string('q', BotLimits.MaxQrBytes + 1), Alice));
        var tooLongId = await Should.ThrowAsync<InvalidSessionInputException>(() => Bots.RecordMessageAsync(new string('a', 129), "hi", Alice));
        var authState = await Should.ThrowAsync<InvalidSessionInputException>(() =>
            Bots.SaveAuthStateAsync("bot1", new byte[BotLimits.MaxAuthStateBytes + BotLimits.AuthStateEnvelopeBytes + 1], Alice));

        message.Message.ShouldContain("65536 bytes");
        qr.Message.ShouldContain("2953 bytes");
        tooLongId.Message.ShouldContain("128");
        authState.Message.ShouldContain("the limit is 1048576 bytes (1 MiB)");
        (await Bots.FindAsync("bot1")).ShouldBe(before);
        (await Audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events.Count.ShouldBe(1);
    }

    [Fact(Timeout = 30_000)]
    public async Task RecordMessageAsync_MessageExactlyAtLimit_IsAccepted()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        var session = await Bots.RecordMessageAsync("bot1", new string('x', BotLimits.MaxMessageBytes), Alice);

        session.LastMessage!.Length.ShouldBe(BotLimits.MaxMessageBytes);
    }

    [Fact(Timeout = 30_000)]
    public async Task ReadAuditAsync_ManyEvents_NewestFirstPagedByBeforeSeq()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        for (var i = 0; i < 9; i++)
        {
            await Bots.RecordMessageAsync("bot1", $"m{i}", new Actor("alice", "testing"));
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
