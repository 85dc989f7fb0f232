using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.Tests.Bots.Connectors;

/// <summary>
/// What every bot connector (<see cref="IBotConnector"/>) must do, as one abstract suite: close it over your connector
/// with a few lines (<c>public sealed class TelegramConnectorContractTests : BotConnectorContractTests</c>) and it runs
/// the connector inside a real core host over a real SQLite file, through <see cref="BotManager"/> exactly as the
/// server does: start, repeated start, end, restore after a restart with the login state, messages, unknown sessions.
/// See docs/connectors.md. The built-in <c>web</c> and <c>bridge</c> connectors pass it.
/// </summary>
public abstract class BotConnectorContractTests : IDisposable
{
    private readonly TempDirectory _data = new("hf-connector");

    /// <summary>The connector's bot type, e.g. <c>telegram</c>.</summary>
    protected abstract string BotType { get; }

    /// <summary>Registers the connector (e.g. <c>services.AddHoldfastBotConnector&lt;TelegramConnector&gt;("telegram")</c>); built-in ones need nothing.</summary>
    protected virtual void Register(IServiceCollection services)
    {
    }

    /// <summary>Settings the connector needs (added to the host's configuration).</summary>
    protected virtual IDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>(StringComparer.Ordinal);

    /// <summary>
    /// Makes <paramref name="text"/> arrive as a message the way the platform delivers it to this connector (a webhook
    /// from the chat service, a runtime's HTTP report, a paired browser). The suite then expects it as the last message.
    /// </summary>
    protected abstract Task DeliverMessageAsync(IServiceProvider services, string sessionId, string text);

    /// <summary>Checks, right after a start, what this connector promises (e.g. a QR to scan, or <c>connected</c> with stored login state).</summary>
    protected virtual void AfterStart(BotSession session, bool hadLoginState)
    {
    }

    public void Dispose()
    {
        _data.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact(Timeout = 60_000)]
    public async Task BotType_ValidNameServedByExactlyThisConnector()
    {
        using var host = await StartHostAsync();

        SessionIds.IsValid(BotType).ShouldBeTrue();
        host.Services.GetRequiredService<BotManager>().BotTypes.Count(t => t == BotType).ShouldBe(1);
        Connector(host).BotType.ShouldBe(BotType);
    }

    [Fact(Timeout = 60_000)]
    public async Task Start_ConnectorTakesTheSession_ActiveConnectedAuditedNotFailed()
    {
        using var host = await StartHostAsync();
        var manager = host.Services.GetRequiredService<BotManager>();

        var started = await manager.StartSessionAsync(new StartBotSession("bot1", BotType, "alice"));

        started.Outcome.ShouldBe(BotStartOutcome.Created);
        manager.IsConnected("bot1").ShouldBeTrue();
        started.Session.Status.ShouldBe(BotSessionStatus.Active);
        started.Session.BotType.ShouldBe(BotType);
        started.Session.Connection.ShouldNotBeNull().State.ShouldNotBe(BotConnectionState.Failed);
        AfterStart(started.Session, hadLoginState: false);
        var audit = await host.Services.GetRequiredService<IAuditLog>().ReadAuditAsync(SessionKind.Bot, "bot1");
        audit.Events.Last().Action.ShouldBe(AuditActions.BotCreated);
    }

    [Fact(Timeout = 60_000)]
    public async Task Start_Twice_SecondChangesNothing()
    {
        using var host = await StartHostAsync();
        var manager = host.Services.GetRequiredService<BotManager>();
        var first = await manager.StartSessionAsync(new StartBotSession("bot1", BotType));

        var second = await manager.StartSessionAsync(new StartBotSession("bot1", BotType));

        second.Outcome.ShouldBe(BotStartOutcome.AlreadyActive);
        second.Session.ShouldBe(first.Session);
        manager.IsConnected("bot1").ShouldBeTrue();
    }

    [Fact(Timeout = 60_000)]
    public async Task End_ConnectorLetsGo_InactiveQrClearedLoginStateKept()
    {
        using var host = await StartHostAsync();
        var manager = host.Services.GetRequiredService<BotManager>();
        await manager.StartSessionAsync(new StartBotSession("bot1", BotType));
        await manager.SaveAuthStateAsync("bot1", "login"u8.ToArray());

        var ended = await manager.EndSessionAsync("bot1");

        ended.Status.ShouldBe(BotSessionStatus.Inactive);
        ended.QrData.ShouldBeNull();
        manager.IsConnected("bot1").ShouldBeFalse();
        (await manager.LoadAuthStateAsync("bot1")).ShouldBe("login"u8.ToArray());
    }

    [Fact(Timeout = 60_000)]
    public async Task Disconnect_UnknownSession_Ignored()
    {
        using var host = await StartHostAsync();

        await Connector(host).DisconnectAsync("never-connected");

        (await host.Services.GetRequiredService<BotManager>().FindAsync("never-connected")).ShouldBeNull();
    }

    [Fact(Timeout = 90_000)]
    public async Task Restart_ActiveSessionRestoredByANewConnectorInstance_EndedOneNot()
    {
        using (var first = await StartHostAsync())
        {
            var manager = first.Services.GetRequiredService<BotManager>();
            await manager.StartSessionAsync(new StartBotSession("bot1", BotType));
            await manager.SaveAuthStateAsync("bot1", "login"u8.ToArray());
            await manager.StartSessionAsync(new StartBotSession("bot2", BotType));
            await manager.EndSessionAsync("bot2");
            await first.StopAsync();
        }

        using var second = await StartHostAsync();
        var restored = second.Services.GetRequiredService<BotManager>();
        await Poll.UntilAsync(() => Task.FromResult(restored.IsConnected("bot1")), "bot1 restored to a new connector instance");

        var bot1 = await restored.GetAsync("bot1");
        bot1.Status.ShouldBe(BotSessionStatus.Active);
        bot1.Connection.ShouldNotBeNull().State.ShouldNotBe(BotConnectionState.Failed);
        AfterStart(bot1, hadLoginState: true);
        (await restored.LoadAuthStateAsync("bot1")).ShouldBe("login"u8.ToArray());
        restored.IsConnected("bot2").ShouldBeFalse();
        (await restored.GetAsync("bot2")).Status.ShouldBe(BotSessionStatus.Inactive);
    }

    [Fact(Timeout = 60_000)]
    public async Task Message_DeliveredTheConnectorsWay_BecomesTheLastMessage()
    {
        using var host = await StartHostAsync();
        var manager = host.Services.GetRequiredService<BotManager>();
        await manager.StartSessionAsync(new StartBotSession("bot1", BotType));

        await DeliverMessageAsync(host.Services, "bot1", "hello from the chat");

        var bot = await manager.GetAsync("bot1");
        bot.LastMessage.ShouldBe("hello from the chat");
        bot.LastMessageAt.ShouldNotBeNull();
    }

    private IBotConnector Connector(IHost host) => host.Services.GetServices<IBotConnector>().Single(c => c.BotType == BotType);

    private async Task<IHost> StartHostAsync()
    {
        var settings = new Dictionary<string, string?>(Settings, StringComparer.Ordinal)
        {
            ["Bots:RestoreJitter"] = "00:00:00",
        };
        var host = TestHosts.BuildCoreHost(_data.Path, settings, Register);
        await host.StartAsync();
        return host;
    }
}
