using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;

namespace Holdfast.Storage.Contract;

/// <summary>
/// The bot connection state, numbered QR codes, message times and per-key login state (issue 12), closed over every
/// provider like <see cref="BotStoreContractTests"/>.
/// </summary>
public abstract class BotConnectionContractTests(IStoreProvider provider) : StoreContractTests(provider)
{
    private static readonly Actor Alice = new("alice");

    private IBotStore Bots => Store.Bots;

    [Fact(Timeout = 30_000)]
    public async Task ConnectionState_StartQrConnectedEnd_FollowsTheStateMachineAndNumbersQrCodes()
    {
        var started = await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        await Bots.SetConnectionStateAsync("bot1", BotConnectionState.AwaitingQr, null, null, Alice);
        Clock.Advance(TimeSpan.FromSeconds(5));
        var firstQr = await Bots.SetQrAsync("bot1", "2@qr-one", Alice);
        var secondQr = await Bots.SetQrAsync("bot1", "2@qr-two", Alice);
        var connected = await Bots.SetConnectionStateAsync("bot1", BotConnectionState.Connected, null, null, Alice);
        var qrWhileConnected = await Should.ThrowAsync<SessionConflictException>(() => Bots.SetQrAsync("bot1", "2@qr-three", Alice));
        var dropped = await Bots.SetConnectionStateAsync("bot1", BotConnectionState.Disconnected, "connection lost", 428, Alice);
        var ended = await Bots.EndAsync("bot1", Alice);

        started.Session.Connection!.State.ShouldBe(BotConnectionState.Starting);
        firstQr.QrSeq.ShouldBe(1);
        firstQr.QrAttempts.ShouldBe(1);
        firstQr.QrSetAt.ShouldBe(Clock.GetUtcNow());
        secondQr.QrSeq.ShouldBe(2);
        secondQr.QrAttempts.ShouldBe(2);
        connected.Connection!.State.ShouldBe(BotConnectionState.Connected);
        connected.QrData.ShouldBeNull();
        connected.QrAttempts.ShouldBe(0);
        connected.QrSeq.ShouldBe(2);
        qrWhileConnected.ShouldNotBeNull();
        dropped.Connection.ShouldBe(new BotConnection(BotConnectionState.Disconnected, "connection lost", 428, Clock.GetUtcNow()));
        ended.Connection!.State.ShouldBe(BotConnectionState.Disconnected);
        ended.Connection.Reason.ShouldBe("ended");
        (await Bots.FindAsync("bot1")).ShouldBe(ended);
    }

    [Fact(Timeout = 30_000)]
    public async Task SetConnectionStateAsync_MoveTheStateMachineRefuses_ConflictAndNothingChanged()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        var loggedOut = await Bots.SetConnectionStateAsync("bot1", BotConnectionState.LoggedOut, "logged out on the phone", 401, Alice);

        await Should.ThrowAsync<SessionConflictException>(
            () => Bots.SetConnectionStateAsync("bot1", BotConnectionState.Connected, null, null, Alice));

        (await Bots.FindAsync("bot1")).ShouldBe(loggedOut);
        var audit = await Store.Audit.ReadAuditAsync(SessionKind.Bot, "bot1");
        audit.Events.Count(e => e.Action == AuditActions.BotConnection).ShouldBe(1);
    }

    [Fact(Timeout = 30_000)]
    public async Task RecordMessageAsync_OlderReceivedAt_DoesNotReplaceNewerLastMessage()
    {
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);
        var newer = Clock.GetUtcNow().AddMinutes(-1);
        await Bots.RecordMessageAsync("bot1", "second", newer, Alice);

        var afterOlder = await Bots.RecordMessageAsync("bot1", "first", newer.AddSeconds(-30), Alice);
        var stamped = await Bots.RecordMessageAsync("bot1", "third", null, Alice);

        afterOlder.LastMessage.ShouldBe("second");
        afterOlder.LastMessageAt.ShouldBe(newer);
        stamped.LastMessage.ShouldBe("third");
        stamped.LastMessageAt.ShouldBe(Clock.GetUtcNow());
    }

    [Fact(Timeout = 30_000)]
    public async Task AuthKeys_WriteReadDelete_OneTransactionPerWriteAndUnknownSessionNotFound()
    {
        var keys = Store.BotAuthKeys.ShouldNotBeNull();
        await Bots.StartOrReactivateAsync(new StartBotSession("bot1"), Alice);

        await keys.WriteAuthKeysAsync(
            "bot1",
            [new("pre-key", "1", [1, 2]), new("pre-key", "2", [3]), new("session", "1", [4])],
            Alice);
        var both = await keys.ReadAuthKeysAsync("bot1", "pre-key", ["1", "2", "9"]);
        await keys.WriteAuthKeysAsync("bot1", [new("pre-key", "1", null), new("pre-key", "2", [5, 6])], Alice);
        var after = await keys.ReadAuthKeysAsync("bot1", "pre-key", ["1", "2"]);

        both.Keys.Order(StringComparer.Ordinal).ShouldBe(["1", "2"]);
        both["1"].ShouldBe(new byte[] { 1, 2 });
        after.Keys.ShouldBe(["2"]);
        after["2"].ShouldBe(new byte[] { 5, 6 });
        (await keys.ReadAuthKeysAsync("bot1", "session", ["1"]))["1"].ShouldBe(new byte[] { 4 });
        await Should.ThrowAsync<SessionNotFoundException>(() => keys.ReadAuthKeysAsync("nobody", "pre-key", ["1"]));
        await Should.ThrowAsync<SessionNotFoundException>(() => keys.WriteAuthKeysAsync("nobody", [new("pre-key", "1", [1])], Alice));
        (await Store.Audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events.Count(e => e.Action == "bot.auth_keys").ShouldBe(2);
    }
}
