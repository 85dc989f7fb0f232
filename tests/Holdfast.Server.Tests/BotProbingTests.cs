using System.Net;
using System.Text.RegularExpressions;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

/// <summary>
/// Issue 10 item 3: every bot route but create, and the pairing pages, answer a stranger the same for "not yours"
/// and "does not exist"; a pairing page needs its unguessable token (or the cookie of the browser paired with it).
/// </summary>
public sealed partial class BotProbingTests
{
    [Fact(Timeout = 120_000)]
    public async Task EveryBotAndPairingRoute_NotYoursAndMissing_AnswerTheSame()
    {
        await using var server = await TestServer.StartAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));
        using var stranger = server.Tcp();
        (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("alice-web", "web"))).StatusCode.ShouldBe(HttpStatusCode.Created);
        (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("alice-brg", "bridge"))).StatusCode.ShouldBe(HttpStatusCode.Created);
        await alice.PostJsonAsync("/api/v1/bots/alice-brg/qr", new BotQrUpdate("qr"));
        (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("alice-end", "web"))).StatusCode.ShouldBe(HttpStatusCode.Created);
        await alice.PostAsync("/api/v1/bots/alice-end/end", null);

        static HttpContent Octets()
        {
            var content = new ByteArrayContent([1, 2, 3]);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
            return content;
        }

        var routes = new (string What, HttpClient Client, Func<HttpClient, string, Task<HttpResponseMessage>> Send)[]
        {
            ("get", bob, (c, id) => c.GetAsync($"/api/v1/bots/{id}")),
            ("qr", bob, (c, id) => c.GetAsync($"/api/v1/bots/{id}/qr?format=text")),
            ("qr bad format", bob, (c, id) => c.GetAsync($"/api/v1/bots/{id}/qr?format=bogus")),
            ("events", bob, (c, id) => c.GetAsync($"/api/v1/bots/{id}/events")),
            ("events bad before", bob, (c, id) => c.GetAsync($"/api/v1/bots/{id}/events?before=-1")),
            ("end", bob, (c, id) => c.PostAsync($"/api/v1/bots/{id}/end", null)),
            ("bridge qr", bob, (c, id) => c.PostJsonAsync($"/api/v1/bots/{id}/qr", new BotQrUpdate("x"))),
            ("bridge message", bob, (c, id) => c.PostJsonAsync($"/api/v1/bots/{id}/messages", new BotMessage("x"))),
            ("bridge message without text", bob, (c, id) => c.PostAsync($"/api/v1/bots/{id}/messages", Http.Json("{}"))),
            ("bridge connection", bob, (c, id) => c.PostJsonAsync($"/api/v1/bots/{id}/connection", new BotConnectionUpdate("connected"))),
            ("auth state read", bob, (c, id) => c.GetAsync($"/api/v1/bots/{id}/auth-state")),
            ("auth state write", bob, (c, id) => c.PutAsync($"/api/v1/bots/{id}/auth-state", Octets())),
            ("auth state write, wrong type", bob, (c, id) => c.PutAsync($"/api/v1/bots/{id}/auth-state", Http.Json("{}"))),
            ("assign owner (not an admin)", bob, (c, id) => c.PostJsonAsync($"/api/v1/bots/{id}/owner", new BotOwnerAssignment("bob"))),
            ("pairing page", stranger, (c, id) => c.GetAsync($"/pair/{id}")),
            ("pairing page, forged token", stranger, (c, id) => c.GetAsync($"/pair/{id}?token=forged")),
            ("pair device, forged token", stranger, (c, id) => c.PostAsync($"/pair/{id}/device", Http.Json("""{"token":"forged"}"""))),
            ("pair device, no token", stranger, (c, id) => c.PostAsync($"/pair/{id}/device", Http.Json("{}"))),
            ("pair message", stranger, (c, id) => c.SendAsync(PairMessage(id))),
        };

        foreach (var existing in new[] { "alice-web", "alice-brg", "alice-end" })
        {
            foreach (var (what, client, send) in routes)
            {
                var (yoursStatus, yoursBody) = await AnswerAsync(send(client, existing), existing);
                var (missingStatus, missingBody) = await AnswerAsync(send(client, "ghost-bot"), "ghost-bot");

                yoursStatus.ShouldBe(missingStatus, $"{what} of {existing}: {yoursBody} / missing: {missingBody}");
                yoursBody.ShouldBe(missingBody, $"{what} of {existing}");
                yoursStatus.ShouldBeOneOf([HttpStatusCode.NotFound, HttpStatusCode.Forbidden], $"{what}: {yoursBody}");
            }
        }

        var after = await (await alice.GetAsync("/api/v1/bots/alice-brg")).ReadAsync<Bot>();
        after.QrData.ShouldBe("qr");
        after.LastMessage.ShouldBeNull();
    }

    [Fact(Timeout = 60_000)]
    public async Task PairingPage_NeedsItsToken_ThenThePairedBrowsersCookie()
    {
        await using var server = await TestServer.StartAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var bot = await (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("web-1", "web"))).ReadAsync<Bot>();
        var link = new Uri(bot.QrData.ShouldNotBeNull());
        var token = System.Web.HttpUtility.ParseQueryString(link.Query)["token"];
        var cookies = new CookieContainer();
        using var browser = new HttpClient(new HttpClientHandler { CookieContainer = cookies }) { BaseAddress = server.BaseAddress };

        using var withToken = await browser.GetAsync(link.PathAndQuery);
        using var withoutToken = await browser.GetAsync("/pair/web-1");
        withToken.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await withToken.Content.ReadAsStringAsync()).ShouldContain("<title>Holdfast bot web-1</title>");
        withoutToken.StatusCode.ShouldBe(HttpStatusCode.NotFound);

        using var paired = await browser.PostAsync("/pair/web-1/device", Http.Json($$"""{"token":"{{token}}"}"""));
        paired.StatusCode.ShouldBe(HttpStatusCode.OK, await paired.Content.ReadAsStringAsync());
        using var reopened = await browser.GetAsync("/pair/web-1");
        using var oldLinkElsewhere = await server.Tcp().GetAsync(link.PathAndQuery);

        reopened.StatusCode.ShouldBe(HttpStatusCode.OK, "the paired browser opens its page again with its cookie");
        oldLinkElsewhere.StatusCode.ShouldBe(HttpStatusCode.NotFound, "the token stops working once it paired");
    }

    private static HttpRequestMessage PairMessage(string id)
    {
        var message = new HttpRequestMessage(HttpMethod.Post, $"/pair/{id}/messages") { Content = Http.Json("""{"text":"x"}""") };
        message.Headers.Add("X-Holdfast-Device-Key", "forged");
        return message;
    }

    /// <summary>Status and body with the id and the per-request trace id taken out.</summary>
    private static async Task<(HttpStatusCode Status, string Body)> AnswerAsync(Task<HttpResponseMessage> sending, string id)
    {
        using var response = await sending;
        var body = await response.Content.ReadAsStringAsync();
        body = TraceId().Replace(body.Replace(id, "{id}", StringComparison.Ordinal), string.Empty);
        return (response.StatusCode, $"{response.Content.Headers.ContentType?.MediaType} {body}");
    }

    [GeneratedRegex("\"trace_id\":\"[^\"]*\"", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex TraceId();
}
