using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.Tests.Bots;

public sealed class BotManagerTests
{
    private static readonly Dictionary<string, string?> Settings = new(StringComparer.Ordinal)
    {
        ["Bots:PublicBaseUrl"] = "http://holdfast.test:7400/",
    };

    [Fact(Timeout = 60_000)]
    public async Task SeedFlow_StartQrMessageRestartEnd_StateSurvivesAndAuditShowsEachStep()
    {
        using var temp = new TempDirectory();

        // Start bot1: the web connector generates the QR pairing link; a message arrives.
        string qr;
        using (var host = TestHosts.BuildCoreHost(temp.Path, Settings))
        {
            await host.StartAsync();
            var manager = host.Services.GetRequiredService<BotManager>();

            var started = await manager.StartSessionAsync(new("bot1"));
            await manager.RecordMessageAsync("bot1", "hello from the phone");

            started.Outcome.ShouldBe(BotStartOutcome.Created);
            qr = started.Session.QrData.ShouldNotBeNull();
            qr.ShouldStartWith("http://holdfast.test:7400/pair/bot1?token=");
            manager.IsConnected("bot1").ShouldBeTrue();
            await host.StopAsync();
        }

        // Restart: a new host over the same file finds the session intact and restore reconnects it.
        using (var host = TestHosts.BuildCoreHost(temp.Path, Settings))
        {
            await host.StartAsync();
            var manager = host.Services.GetRequiredService<BotManager>();
            await Poll.UntilAsync(() => Task.FromResult(manager.IsConnected("bot1")), "bot1 restored to its connector");

            var restored = await manager.GetAsync("bot1");
            restored.Status.ShouldBe(BotSessionStatus.Active);
            restored.QrData.ShouldNotBeNull().ShouldStartWith("http://holdfast.test:7400/pair/bot1?token=");
            restored.QrData.ShouldNotBe(qr, "a QR stored before a restart counts as expired: the web connector shows a new one");
            restored.LastMessage.ShouldBe("hello from the phone");
            host.Services.GetRequiredService<WebBotConnector>().ConnectedSessions.ShouldContain("bot1");

            var ended = await manager.EndSessionAsync("bot1");

            ended.Status.ShouldBe(BotSessionStatus.Inactive);
            ended.QrData.ShouldBeNull();
            manager.IsConnected("bot1").ShouldBeFalse();
            (await manager.GetAsync("bot1")).ShouldBe(ended);
            var audit = await host.Services.GetRequiredService<IAuditLog>().ReadAuditAsync(SessionKind.Bot, "bot1");
            audit.Events.Select(e => e.Action).Reverse().ShouldBe(["bot.created", "bot.qr", "bot.connection", "bot.message", "bot.qr", "bot.ended"]);
            audit.Events[0].FromState.ShouldBe("active");
            audit.Events[0].ToState.ShouldBe("inactive");
            await host.StopAsync();
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task PairWebDeviceAsync_TokenFromQr_PairsAndSurvivesRestartWithoutNewQr()
    {
        using var temp = new TempDirectory();
        string deviceKey;
        using (var host = TestHosts.BuildCoreHost(temp.Path, Settings))
        {
            await host.StartAsync();
            var manager = host.Services.GetRequiredService<BotManager>();
            var started = await manager.StartSessionAsync(new("bot1"));
            var token = WebBotConnector.ReadPairingToken(started.Session)!;

            await Should.ThrowAsync<InvalidSessionInputException>(() => manager.PairWebDeviceAsync("bot1", token + "x"));
            deviceKey = await manager.PairWebDeviceAsync("bot1", token);

            var paired = await manager.GetAsync("bot1");
            paired.QrData.ShouldBeNull();
            paired.ConnectionDetail.ShouldBe("connected: paired browser");
            (await manager.VerifyWebDeviceAsync("bot1", deviceKey)).ShouldBeTrue();
            (await manager.VerifyWebDeviceAsync("bot1", "not-the-key")).ShouldBeFalse();
            await Should.ThrowAsync<InvalidSessionInputException>(() => manager.PairWebDeviceAsync("bot1", token));
            await host.StopAsync();
        }

        using (var host = TestHosts.BuildCoreHost(temp.Path, Settings))
        {
            await host.StartAsync();
            var manager = host.Services.GetRequiredService<BotManager>();
            await Poll.UntilAsync(() => Task.FromResult(manager.IsConnected("bot1")), "bot1 restored");

            var restored = await manager.GetAsync("bot1");
            restored.QrData.ShouldBeNull();
            restored.ConnectionDetail.ShouldBe("connected: paired browser");
            (await manager.VerifyWebDeviceAsync("bot1", deviceKey)).ShouldBeTrue();

            await manager.EndSessionAsync("bot1");
            (await manager.VerifyWebDeviceAsync("bot1", deviceKey)).ShouldBeFalse();
            await host.StopAsync();
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task StartSessionAsync_EndedSession_ReactivatesAndConnectsWithNewQr()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, Settings);
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<BotManager>();
        var first = await manager.StartSessionAsync(new("bot1"));
        await manager.EndSessionAsync("bot1");

        var again = await manager.StartSessionAsync(new("bot1"));

        again.Outcome.ShouldBe(BotStartOutcome.Reactivated);
        again.Session.Status.ShouldBe(BotSessionStatus.Active);
        again.Session.QrData.ShouldNotBeNull();
        again.Session.QrData.ShouldNotBe(first.Session.QrData);
        manager.IsConnected("bot1").ShouldBeTrue();
        await host.StopAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task BridgeSession_RuntimeReports_StoredAndAuthStateEncryptedAtRest()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, Settings);
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<BotManager>();
        var secret = "{\"creds\":\"very-secret-credential-material\"}"u8.ToArray();

        var started = await manager.StartSessionAsync(new("wa-1", "bridge", "alice"));
        await manager.UpdateQrAsync("wa-1", "2@AbCdEf,xyz==");
        await manager.ReportConnectionAsync("wa-1", "starting", "socket open");
        await manager.SaveAuthStateAsync("wa-1", secret);
        await manager.RecordMessageAsync("wa-1", "hi bot");

        started.Session.QrData.ShouldBeNull();
        host.Services.GetRequiredService<BridgeBotConnector>().ConnectedSessions.ShouldContain("wa-1");
        var session = await manager.GetAsync("wa-1");
        session.QrData.ShouldBe("2@AbCdEf,xyz==");
        session.ConnectionDetail.ShouldBe("starting: socket open");
        session.Connection.ShouldNotBeNull().State.ShouldBe(BotConnectionState.Starting);
        session.Owner.ShouldBe("alice");
        (await manager.LoadAuthStateAsync("wa-1")).ShouldBe(secret);
        var raw = await host.Services.GetRequiredService<IBotStore>().LoadAuthStateAsync("wa-1");
        raw.ShouldNotBeNull();
        raw.Length.ShouldBe(secret.Length + 29);
        System.Text.Encoding.UTF8.GetString(raw).ShouldNotContain("very-secret");
        var fileBytes = await File.ReadAllBytesAsync(host.Services.GetRequiredService<SqliteDatabase>().Path);
        System.Text.Encoding.UTF8.GetString(fileBytes).ShouldNotContain("very-secret");
        await host.StopAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task StartSessionAsync_UnknownBotTypeOrBadId_RejectedAndNothingStored()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, Settings);
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<BotManager>();

        var unknown = await Should.ThrowAsync<InvalidSessionInputException>(() => manager.StartSessionAsync(new("bot1", "telegram")));
        var badId = await Should.ThrowAsync<InvalidSessionInputException>(() => manager.StartSessionAsync(new("bot 1")));

        unknown.Field.ShouldBe("bot_type");
        unknown.Message.ShouldContain("bridge, web");
        badId.Field.ShouldBe("session_id");
        (await manager.ListAsync()).Items.ShouldBeEmpty();
        await host.StopAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task RestoreActiveSessionsAsync_ManySessions_ReconnectsOnlyActiveOnes()
    {
        using var temp = new TempDirectory();
        using (var host = TestHosts.BuildCoreHost(temp.Path, Settings))
        {
            await host.StartAsync();
            var manager = host.Services.GetRequiredService<BotManager>();
            for (var i = 0; i < 25; i++)
            {
                await manager.StartSessionAsync(new($"bot{i:D2}", i % 2 == 0 ? "web" : "bridge"));
            }

            await manager.EndSessionAsync("bot03");
            await host.StopAsync();
        }

        using (var host = TestHosts.BuildCoreHost(temp.Path, Settings, services => services.Configure<BotOptions>(o => o.RestoreOnStart = false)))
        {
            await host.StartAsync();
            var manager = host.Services.GetRequiredService<BotManager>();
            manager.IsConnected("bot00").ShouldBeFalse();

            var restored = await manager.RestoreActiveSessionsAsync();

            restored.ShouldBe(24);
            manager.IsConnected("bot03").ShouldBeFalse();
            host.Services.GetRequiredService<BridgeBotConnector>().ConnectedSessions.Count.ShouldBe(11);
            host.Services.GetRequiredService<WebBotConnector>().ConnectedSessions.Count.ShouldBe(13);
            await host.StopAsync();
        }
    }

    [Fact]
    public void VerifyPairingToken_OnlyTheCurrentTokenOfAnActiveWebSession_Passes()
    {
        var link = WebBotConnector.CreatePairingLink("http://h:1/", "bot1", "tok-123");
        var session = new BotSession("bot1", DateTimeOffset.UnixEpoch, null, BotSessionStatus.Active, link, DateTimeOffset.UnixEpoch, "web", null, null, 2);

        link.ShouldBe("http://h:1/pair/bot1?token=tok-123");
        WebBotConnector.VerifyPairingToken(session, "tok-123").ShouldBeTrue();
        WebBotConnector.VerifyPairingToken(session, "tok-124").ShouldBeFalse();
        WebBotConnector.VerifyPairingToken(session, null).ShouldBeFalse();
        WebBotConnector.VerifyPairingToken(session with { Status = BotSessionStatus.Inactive }, "tok-123").ShouldBeFalse();
        WebBotConnector.VerifyPairingToken(session with { BotType = "bridge" }, "tok-123").ShouldBeFalse();
        WebBotConnector.VerifyPairingToken(session with { QrData = null }, "tok-123").ShouldBeFalse();
        WebBotConnector.VerifyPairingToken(session with { SessionId = "bot2" }, "tok-123").ShouldBeFalse();
    }

    [Fact(Timeout = 60_000)]
    public async Task StartSessionAsync_ConnectorThrows_SessionStaysActiveWithFailureVisibleAndRestoreSkipsIt()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, Settings, services => services.AddHoldfastBotConnector<FailingConnector>("failing"));
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<BotManager>();

        await Should.ThrowAsync<InvalidOperationException>(() => manager.StartSessionAsync(new("bot1", "failing")));
        await manager.StartSessionAsync(new("bot2"));
        var restored = await manager.RestoreActiveSessionsAsync();

        var failed = await manager.GetAsync("bot1");
        failed.Status.ShouldBe(BotSessionStatus.Active);
        // Parked: still active and kept, its state failed with the reason, so the next start does not loop on it.
        failed.Connection.ShouldNotBeNull().State.ShouldBe(BotConnectionState.Failed);
        failed.ConnectionDetail.ShouldNotBeNull().ShouldStartWith("failed: restore: connecting failed 1 times");
        manager.IsConnected("bot1").ShouldBeFalse();
        manager.IsConnected("bot2").ShouldBeTrue();
        restored.ShouldBe(0);
        await host.StopAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task SaveAuthStateAsync_OverOneMebibyte_RejectedNamingTheLimitAndNothingChanged()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, Settings);
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<BotManager>();
        var audit = host.Services.GetRequiredService<IAuditLog>();
        await manager.StartSessionAsync(new("wa-1", "bridge"));
        await manager.SaveAuthStateAsync("wa-1", "first login"u8.ToArray());
        var before = await manager.GetAsync("wa-1");
        var eventsBefore = (await audit.ReadAuditAsync(SessionKind.Bot, "wa-1")).Events.Count;

        var ex = await Should.ThrowAsync<InvalidSessionInputException>(() => manager.SaveAuthStateAsync("wa-1", new byte[BotLimits.MaxAuthStateBytes + 1]));

        ex.Field.ShouldBe("auth_state");
        ex.Message.ShouldContain("1048577 bytes");
        ex.Message.ShouldContain("the limit is 1048576 bytes (1 MiB)");
        (await manager.GetAsync("wa-1")).ShouldBe(before);
        (await manager.LoadAuthStateAsync("wa-1")).ShouldBe("first login"u8.ToArray());
        (await audit.ReadAuditAsync(SessionKind.Bot, "wa-1")).Events.Count.ShouldBe(eventsBefore);

        // Exactly at the limit is accepted (the encryption envelope does not count against it).
        await manager.SaveAuthStateAsync("wa-1", new byte[BotLimits.MaxAuthStateBytes]);
        (await manager.LoadAuthStateAsync("wa-1"))!.Length.ShouldBe(BotLimits.MaxAuthStateBytes);
        await host.StopAsync();
    }

    private sealed class FailingConnector : IBotConnector
    {
        public string BotType => "failing";

        public Task ConnectAsync(BotSession session, IBotSessionCallbacks callbacks, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("the bot runtime is unreachable (secret=do-not-show)");

        public Task DisconnectAsync(string sessionId, CancellationToken cancellationToken = default) => Task.CompletedTask;
    }
}
