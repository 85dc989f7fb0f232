using Holdfast.Bots;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Tests.Bots.Connectors;

/// <summary>The built-in <c>web</c> connector passes the connector contract: a QR pairing link until a browser is paired.</summary>
public sealed class WebBotConnectorContractTests : BotConnectorContractTests
{
    protected override string BotType => WebBotConnector.TypeName;

    protected override IDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>(StringComparer.Ordinal)
    {
        ["Bots:PublicBaseUrl"] = "http://holdfast.test:7400/",
    };

    protected override async Task DeliverMessageAsync(IServiceProvider services, string sessionId, string text)
    {
        // What the pairing page does: the browser scans the QR (pairs with its token), then sends with its device key.
        var manager = services.GetRequiredService<BotManager>();
        var session = await manager.GetAsync(sessionId);
        var token = new Uri(session.QrData!).Query.Split("token=")[1];
        var deviceKey = await manager.PairWebDeviceAsync(sessionId, Uri.UnescapeDataString(token));
        (await manager.VerifyWebDeviceAsync(sessionId, deviceKey)).ShouldBeTrue();
        await manager.RecordMessageAsync(sessionId, text);
    }

    protected override void AfterStart(BotSession session, bool hadLoginState)
    {
        // Unpaired (the saved login state of the suite is not a paired device): a pairing link to scan.
        session.QrData.ShouldNotBeNull().ShouldStartWith($"http://holdfast.test:7400/pair/{session.SessionId}?token=");
        session.Connection!.State.ShouldBe(BotConnectionState.AwaitingQr);
    }
}

/// <summary>The built-in <c>bridge</c> connector passes the connector contract: the runtime elsewhere reports over HTTP.</summary>
public sealed class BridgeBotConnectorContractTests : BotConnectorContractTests
{
    protected override string BotType => BridgeBotConnector.TypeName;

    protected override Task DeliverMessageAsync(IServiceProvider services, string sessionId, string text) =>

        // What POST /api/v1/bots/{id}/messages does for the runtime.
        services.GetRequiredService<BotManager>().RecordMessageAsync(sessionId, text, DateTimeOffset.UtcNow);
}
