using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;

namespace Holdfast.Tests.Bots;

/// <summary>The bot-session rules every store applies (BotRules), as tables, with no database.</summary>
public sealed class BotRulesTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    // (existing: none | active | inactive, its owner, its type, request owner, request type) -> outcome / refusal / audit detail
    public static TheoryData<string, string?, string, string?, string, string> StartTable => new()
    {
        { "none", null, "web", "alice", "web", "Created bot_type=web" },
        { "none", null, "web", null, "bridge", "Created bot_type=bridge" },
        { "active", "alice", "web", "alice", "web", "AlreadyActive" },
        { "active", "alice", "web", "alice", "bridge", "conflict" },
        { "active", "alice", "web", "bob", "web", "unavailable" },
        { "active", null, "web", "bob", "web", "unavailable" },
        { "active", "alice", "web", null, "web", "AlreadyActive" },
        { "inactive", "alice", "web", "alice", "web", "Reactivated bot_type=web" },
        { "inactive", "alice", "web", "alice", "bridge", "Reactivated bot_type=web->bridge" },
        { "inactive", "alice", "web", "bob", "web", "unavailable" },
        { "inactive", null, "bridge", null, "bridge", "Reactivated bot_type=bridge" },
    };

    [Theory]
    [MemberData(nameof(StartTable))]
    public void DecideStart_Table(string existing, string? owner, string type, string? requestOwner, string requestType, string expected)
    {
        var row = existing == "none" ? null : Session(existing == "active" ? BotSessionStatus.Active : BotSessionStatus.Inactive) with { Owner = owner, BotType = type };
        var request = new StartBotSession("bot1", requestType, requestOwner);

        switch (expected)
        {
            case "conflict":
                Should.Throw<SessionConflictException>(() => BotRules.DecideStart(row, request)).Message.ShouldContain("end it before starting it as 'bridge'");
                break;
            case "unavailable":
                Should.Throw<BotIdUnavailableException>(() => BotRules.DecideStart(row, request));
                break;
            default:
                var plan = BotRules.DecideStart(row, request);
                $"{plan.Outcome} {plan.Detail}".Trim().ShouldBe(expected);
                break;
        }
    }

    [Fact]
    public void SetQr_InactiveRefusedConnectedRefusedSameQrNoOpNewQrAudited()
    {
        Should.Throw<SessionConflictException>(() => BotRules.SetQr("qr").Decide(Session(BotSessionStatus.Inactive))).Message.ShouldContain("it is inactive");
        Should.Throw<SessionConflictException>(() => BotRules.SetQr("qr").Decide(Session(BotSessionStatus.Active) with { Connection = new(BotConnectionState.Connected, null, null, At) }))
            .Message.ShouldContain("is connected");
        BotRules.SetQr(null).Decide(Session(BotSessionStatus.Active) with { Connection = new(BotConnectionState.Connected, null, null, At), QrData = "old" })
            .ShouldBe(new BotChange(AuditActions.BotQr, "qr cleared", "active", "active"));
        BotRules.SetQr("same").Decide(Session(BotSessionStatus.Active) with { QrData = "same" }).ShouldBeNull();
        BotRules.SetQr("new").Decide(Session(BotSessionStatus.Active) with { QrData = "old" }).ShouldBe(new BotChange(AuditActions.BotQr, "qr updated", "active", "active"));
    }

    [Fact]
    public void RecordMessage_OnlyForwardAndOnlyWhileActive()
    {
        var stored = Session(BotSessionStatus.Active) with { LastMessageAt = At };

        BotRules.RecordMessage("hello", At.AddSeconds(-1)).Decide(stored).ShouldBeNull();
        BotRules.RecordMessage("hello", At.AddSeconds(1)).Decide(stored).ShouldBe(new BotChange(AuditActions.BotMessage, "5 characters", "active", "active"));
        BotRules.RecordMessage("hello", null).Decide(stored).ShouldNotBeNull();
        Should.Throw<SessionConflictException>(() => BotRules.RecordMessage("hello", null).Decide(stored with { Status = BotSessionStatus.Inactive }));
    }

    [Fact]
    public void SetConnectionState_IllegalStepRefusedSameReportNoOpOtherwiseAudited()
    {
        var connected = Session(BotSessionStatus.Active) with { Connection = new(BotConnectionState.Connected, null, null, At) };
        var loggedOut = Session(BotSessionStatus.Active) with { Connection = new(BotConnectionState.LoggedOut, "bye", 401, At) };

        BotRules.SetConnectionState(BotConnectionState.Connected, null, null, "connected").Decide(connected).ShouldBeNull();
        BotRules.SetConnectionState(BotConnectionState.Reconnecting, "net", null, "reconnecting: net").Decide(connected)
            .ShouldBe(new BotChange(AuditActions.BotConnection, "connected -> reconnecting: net", "active", "active"));
        Should.Throw<SessionConflictException>(() => BotRules.SetConnectionState(BotConnectionState.Connected, null, null, "connected").Decide(loggedOut));
    }

    [Fact]
    public void EndOwnerConnectionAuthState_NoOpsAndAuditWording()
    {
        var active = Session(BotSessionStatus.Active) with { Owner = "alice", ConnectionDetail = "d" };

        BotRules.End().Decide(active).ShouldBe(new BotChange(AuditActions.BotEnded, null, "active", "inactive"));
        BotRules.End().Decide(active with { Status = BotSessionStatus.Inactive }).ShouldBeNull();
        BotRules.AssignOwner("alice").Decide(active).ShouldBeNull();
        BotRules.AssignOwner("bob").Decide(active)!.Detail.ShouldBe("owner alice -> bob");
        BotRules.SetConnection("d").Decide(active).ShouldBeNull();
        BotRules.SetConnection(null).Decide(active)!.Detail.ShouldBe("d -> none");
        BotRules.SaveAuthState(40).Decide(active with { Status = BotSessionStatus.Inactive }).ShouldBe(new BotChange(AuditActions.BotAuthState, "auth state stored (40 bytes, encrypted)", "inactive", "inactive"));
        BotRules.SaveAuthState(null).Decide(active)!.Detail.ShouldBe("auth state cleared");
    }

    private static BotSession Session(BotSessionStatus status) =>
        new("bot1", At, null, status, null, At, "web", "alice", null, 1);
}
