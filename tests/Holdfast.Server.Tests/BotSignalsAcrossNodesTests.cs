using System.Net;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

/// <summary>
/// Two <c>holdfast serve</c> nodes (in-process hosts, each with its own data directory) on one real PostgreSQL: a bot
/// runtime attached to node A hears what node B did, through the store's change signals (<c>LISTEN/NOTIFY</c>): the
/// command stream gets the <c>end</c>, and a QR long poll answers with the QR stored on B.
/// </summary>
public sealed class BotSignalsAcrossNodesTests
{
    [Fact(Timeout = 120_000)]
    public async Task Commands_EndedOnNodeB_RuntimeListeningOnNodeAHearsEnd()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        await using var nodeA = await TestServer.StartAsync(OnDatabase(db));
        await using var nodeB = await TestServer.StartAsync(OnDatabase(db));
        var key = await nodeA.CreateKeyAsync("alice");
        using var runtimeA = nodeA.Tcp(key);
        using var clientB = nodeB.Tcp(key);
        (await runtimeA.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).EnsureSuccessStatusCode();
        using var stream = await runtimeA.GetAsync("/api/v1/bots/wa-1/commands", HttpCompletionOption.ResponseHeadersRead);
        stream.StatusCode.ShouldBe(HttpStatusCode.OK);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync());
        await Task.Delay(200); // Let the stream subscribe (a signal before it would be re-read anyway: the end is sent on connect too).

        var ended = await (await clientB.PostAsync("/api/v1/bots/wa-1/end", null)).ReadAsync<Bot>();

        // A `start` may come first: the create's own signal can reach node A after the stream subscribed, and the
        // stream then repeats the (idempotent) start of the still-active session. The end must follow.
        var (id, data) = await BotBridgeApiTests.ReadCommandAsync(reader);
        if (data.Contains("\"command\":\"start\"", StringComparison.Ordinal))
        {
            (id, data) = await BotBridgeApiTests.ReadCommandAsync(reader);
        }

        data.ShouldContain("\"command\":\"end\"");
        id.ShouldBe(ended.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact(Timeout = 120_000)]
    public async Task Commands_StartedOnNodeB_RuntimeListeningOnNodeAHearsStart()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        await using var nodeA = await TestServer.StartAsync(OnDatabase(db));
        await using var nodeB = await TestServer.StartAsync(OnDatabase(db));
        var key = await nodeA.CreateKeyAsync("alice");
        using var runtimeA = nodeA.Tcp(key);
        using var clientB = nodeB.Tcp(key);
        (await runtimeA.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).EnsureSuccessStatusCode();
        var ended = await (await runtimeA.PostAsync("/api/v1/bots/wa-1/end", null)).ReadAsync<Bot>();
        using var seen = new HttpRequestMessage(HttpMethod.Get, "/api/v1/bots/wa-1/commands");
        seen.Headers.Add("Last-Event-ID", ended.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var stream = await runtimeA.SendAsync(seen, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync());
        await Task.Delay(200);

        (await clientB.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).EnsureSuccessStatusCode();

        (await BotBridgeApiTests.ReadCommandAsync(reader)).Data.ShouldContain("\"command\":\"start\"");
    }

    [Fact(Timeout = 120_000)]
    public async Task QrLongPoll_OnNodeA_AnsweredByTheQrStoredOnNodeB()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        await using var nodeA = await TestServer.StartAsync(OnDatabase(db));
        await using var nodeB = await TestServer.StartAsync(OnDatabase(db));
        var key = await nodeA.CreateKeyAsync("alice");
        using var clientA = nodeA.Tcp(key);
        using var runtimeB = nodeB.Tcp(key);
        (await runtimeB.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).EnsureSuccessStatusCode();
        (await runtimeB.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@first"))).EnsureSuccessStatusCode();

        var waiting = clientA.GetAsync("/api/v1/bots/wa-1/qr?format=text&after_seq=1&wait=50");
        await Task.Delay(300);
        waiting.IsCompleted.ShouldBeFalse("it waits for a newer QR");
        var started = TimeProvider.System.GetTimestamp();
        (await runtimeB.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@second"))).EnsureSuccessStatusCode();
        using var answered = await waiting;

        answered.StatusCode.ShouldBe(HttpStatusCode.OK);
        answered.Headers.GetValues("X-Qr-Seq").ShouldBe(["2"]);
        TimeProvider.System.GetElapsedTime(started).ShouldBeLessThan(TimeSpan.FromSeconds(40), "woken by the signal, not by the end of the wait");
    }

    // Both nodes with one bot login-state key: a node whose key differs from the stored fingerprint refuses to start.
    private static readonly string AuthStateKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private static Dictionary<string, string?> OnDatabase(TestDatabase db) => new(StringComparer.Ordinal)
    {
        ["Storage:ConnectionString"] = db.Uri,
        ["Bots:AuthStateKey"] = AuthStateKey,
    };
}
