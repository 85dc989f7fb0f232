using System.Net;
using System.Net.Http.Json;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

public sealed class BotApiTests
{
    [Fact(Timeout = 60_000)]
    public async Task WebBot_StartQrPairMessageEnd_EachStepStoredAndAudited()
    {
        await using var server = await TestServer.StartAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));

        using var start = await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("bot1"));
        start.StatusCode.ShouldBe(HttpStatusCode.Created);
        var bot = await start.ReadAsync<Bot>();
        bot.Owner.ShouldBe("alice");
        bot.Status.ShouldBe(BotStatus.Active);
        bot.QrData.ShouldNotBeNull().ShouldContain("/pair/bot1?token=");

        using var png = await alice.GetAsync("/api/v1/bots/bot1/qr?format=png");
        png.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
        (await png.Content.ReadAsByteArrayAsync())[..4].ShouldBe(new byte[] { 0x89, 0x50, 0x4E, 0x47 });
        using var svg = await alice.GetAsync("/api/v1/bots/bot1/qr?format=svg");
        svg.Content.Headers.ContentType!.MediaType.ShouldBe("image/svg+xml");
        (await svg.Content.ReadAsStringAsync()).ShouldContain("<svg");
        (await alice.GetStringAsync("/api/v1/bots/bot1/qr?format=text")).ShouldContain("█");

        // The QR encodes the pairing page; opening it (no API key) pairs this "browser".
        var link = new Uri(bot.QrData);
        using var browser = server.Tcp();
        var page = await browser.GetStringAsync(link.PathAndQuery);
        page.ShouldContain("<title>Holdfast bot bot1</title>");
        var token = System.Web.HttpUtility.ParseQueryString(link.Query)["token"];
        using var paired = await browser.PostAsync("/pair/bot1/device", Http.Json($$"""{"token":"{{token}}"}"""));
        var deviceKey = (await paired.Content.ReadFromJsonAsync<Dictionary<string, string>>())!["device_key"];
        using var message = new HttpRequestMessage(HttpMethod.Post, "/pair/bot1/messages") { Content = Http.Json("""{"text":"hello from the phone"}""") };
        message.Headers.Add("X-Holdfast-Device-Key", deviceKey);
        (await browser.SendAsync(message)).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        var afterMessage = await (await alice.GetAsync("/api/v1/bots/bot1")).ReadAsync<Bot>();
        afterMessage.LastMessage.ShouldBe("hello from the phone");
        afterMessage.QrData.ShouldBeNull();
        afterMessage.ConnectionDetail.ShouldNotBeNull().ShouldContain("connected");
        await (await alice.GetAsync("/api/v1/bots/bot1/qr")).ShouldBeProblemAsync(HttpStatusCode.NotFound);

        var ended = await (await alice.PostAsync("/api/v1/bots/bot1/end", null)).ReadAsync<Bot>();
        ended.Status.ShouldBe(BotStatus.Inactive);
        ended.QrData.ShouldBeNull();
        var events = await (await alice.GetAsync("/api/v1/bots/bot1/events")).ReadAsync<AuditPage>();
        events.Items.Count.ShouldBeGreaterThanOrEqualTo(4);
        events.Items[0].Seq.ShouldBeGreaterThan(events.Items[^1].Seq);
    }

    [Fact(Timeout = 60_000)]
    public async Task Pairing_WrongToken_Is4xxAndNothingChanges()
    {
        await using var server = await TestServer.StartAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var bot = await (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("bot1"))).ReadAsync<Bot>();
        using var browser = server.Tcp();

        await (await browser.PostAsync("/pair/bot1/device", Http.Json("""{"token":"forged"}"""))).ShouldBe4xxProblemAsync();
        using var message = new HttpRequestMessage(HttpMethod.Post, "/pair/bot1/messages") { Content = Http.Json("""{"text":"x"}""") };
        message.Headers.Add("X-Holdfast-Device-Key", "forged");
        await (await browser.SendAsync(message)).ShouldBeProblemAsync(HttpStatusCode.NotFound);

        var after = await (await alice.GetAsync("/api/v1/bots/bot1")).ReadAsync<Bot>();
        after.ShouldBe(bot);
    }

    [Fact(Timeout = 60_000)]
    public async Task Bridge_ReportsQrMessageConnectionAndAuthState_RoundTrip()
    {
        await using var server = await TestServer.StartAsync();
        using var runtime = server.Tcp(await server.CreateKeyAsync("alice"));

        (await runtime.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).StatusCode.ShouldBe(HttpStatusCode.Created);
        (await runtime.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@abcdef,xyz=="))).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await runtime.PostJsonAsync("/api/v1/bots/wa-1/connection", new BotConnectionUpdate("connected", "phone online"))).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await runtime.PostJsonAsync("/api/v1/bots/wa-1/messages", new BotMessage("hi"))).StatusCode.ShouldBe(HttpStatusCode.OK);
        var blob = Enumerable.Range(0, 5000).Select(i => (byte)(i * 7)).ToArray();
        using var put = new ByteArrayContent(blob);
        put.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        (await runtime.PutAsync("/api/v1/bots/wa-1/auth-state", put)).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        (await runtime.GetByteArrayAsync("/api/v1/bots/wa-1/auth-state")).ShouldBe(blob);
        var bot = await (await runtime.GetAsync("/api/v1/bots/wa-1")).ReadAsync<Bot>();
        bot.QrData.ShouldBeNull("a connected session never keeps a QR");
        bot.LastMessage.ShouldBe("hi");
        bot.ConnectionDetail.ShouldBe("connected: phone online");
        bot.Connection.ShouldNotBeNull().State.ShouldBe("connected");
        (await runtime.GetStringAsync("/api/v1/bots/wa-1/events")).ShouldNotContain(Convert.ToBase64String(blob)[..16]);
    }

    [Fact(Timeout = 60_000)]
    public async Task Bots_SurviveRestart_WithQrStatusAndLastMessage()
    {
        await using var server = await TestServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        using (var before = server.Tcp(key))
        {
            await before.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"));
            await before.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("qr-1"));
            await before.PostJsonAsync("/api/v1/bots/wa-1/messages", new BotMessage("last"));
        }

        await server.RestartAsync();

        using var after = server.Tcp(key);
        var bot = await (await after.GetAsync("/api/v1/bots/wa-1")).ReadAsync<Bot>();
        bot.Status.ShouldBe(BotStatus.Active);
        bot.QrData.ShouldBe("qr-1");
        bot.LastMessage.ShouldBe("last");
    }

    [Theory(Timeout = 60_000)]
    [InlineData(2332)]
    [InlineData(2953)]
    [InlineData(2954)]
    [InlineData(4096)]
    public async Task BridgeQr_AnyStoredPayloadRenders_TooLongIs400NamingTheLimit(int bytes)
    {
        await using var server = await TestServer.StartAsync();
        using var runtime = server.Tcp(await server.CreateKeyAsync("alice"));
        (await runtime.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).StatusCode.ShouldBe(HttpStatusCode.Created);

        using var stored = await runtime.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate(new string('q', bytes)));

        if (bytes > 2953)
        {
            (await stored.ShouldBeProblemAsync(HttpStatusCode.BadRequest)).Detail.ShouldNotBeNull().ShouldContain("2953 bytes");
            (await (await runtime.GetAsync("/api/v1/bots/wa-1")).ReadAsync<Bot>()).QrData.ShouldBeNull();
            return;
        }

        stored.StatusCode.ShouldBe(HttpStatusCode.OK, await stored.Content.ReadAsStringAsync());
        foreach (var format in new[] { "png", "svg", "text" })
        {
            using var drawn = await runtime.GetAsync($"/api/v1/bots/wa-1/qr?format={format}");
            drawn.StatusCode.ShouldBe(HttpStatusCode.OK, $"{format}: {await drawn.Content.ReadAsStringAsync()}");
        }
    }
}
