using System.Net;
using System.Text;
using Holdfast.Client.Models;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>
/// Bad input on every endpoint answers a 4xx problem+json with a message, the server keeps serving, and nothing
/// stored changes.
/// </summary>
public sealed class BadInputTests
{
    private static readonly string[] Injections =
    [
        "'; DROP TABLE generation_sessions; --",
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "%00",
        "a b",
        new string('x', 300),
    ];

    [Fact(Timeout = 180_000)]
    public async Task EveryEndpoint_BadInput_Is4xxProblem_ServerKeepsServing_DataUnchanged()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "0",
            ["Server:MaxRequestBodyBytes"] = "65536",
            ["Server:RateLimitBurst"] = "100000",
            ["Server:RateLimitPerSecond"] = "100000",
        });
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var generation = await (await alice.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", "keep me")], Parameters: new GenerationParameters(MaxTokens: 5)))).ReadAsync<Generation>();
        var done = await Holdfast.TestHelpers.Poll.UntilAsync(
            async () => await (await alice.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>(),
            x => x.Status == GenerationStatus.Completed,
            "the seed generation completes");
        await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("bot1", "bridge"));
        await alice.PostJsonAsync("/api/v1/bots/bot1/qr", new BotQrUpdate("qr"));
        var before = await SnapshotAsync(alice, done.Id);
        var g = $"/api/v1/generations/{done.Id}";

        var huge = new string('a', 200_000);
        var bodies = new (string Path, string Json)[]
        {
            ("/api/v1/generations", "{"),
            ("/api/v1/generations", "[]"),
            ("/api/v1/generations", "\"just a string\""),
            ("/api/v1/generations", """{"model":"scripted","input":"x","surprise":1}"""),
            ("/api/v1/generations", """{"model":42,"input":"x"}"""),
            ("/api/v1/generations", """{"model":"scripted","input":42}"""),
            ("/api/v1/generations", """{"model":"scripted","input":[{"role":"hacker","content":"x"}]}"""),
            ("/api/v1/generations", """{"model":"scripted","input":[]}"""),
            ("/api/v1/generations", """{"input":"x"}"""),
            ("/api/v1/generations", """{"model":"scripted","input":"x","parameters":{"temperature":"hot"}}"""),
            ("/api/v1/generations", """{"model":"scripted","input":"x","parameters":{"temperature":99}}"""),
            ("/api/v1/generations", """{"model":"scripted","input":"x","parameters":{"max_tokens":-1}}"""),
            ("/api/v1/generations", """{"model":"scripted","input":"x","previous_session_id":"'; DROP TABLE x; --"}"""),
            ("/api/v1/generations", """{"model":"scripted","input":"x","model":"twice"}"""),
            ("/api/v1/generations", $$"""{"model":"scripted","input":"{{huge}}"}"""),
            ($"{g}/pause", """{"reason":5}"""),
            ($"{g}/resume", """{"expected_version":"one"}"""),
            ($"{g}/cancel", """{"unknown":true}"""),
            ($"{g}/fork", """{"at_seq":-5}"""),
            ($"{g}/fork", """{"at_seq":"x"}"""),
            ("/api/v1/bots", """{"session_id":"../../etc"}"""),
            ("/api/v1/bots", """{"session_id":"ok","bot_type":"telepathy"}"""),
            ("/api/v1/bots", """{"session_id":null}"""),
            ("/api/v1/bots", """{"session_id":"x","extra":"y"}"""),
            ("/api/v1/bots/bot1/qr", """{"qr_data":5}"""),
            ("/api/v1/bots/bot1/qr", """{"qr_data":""}"""),
            ("/api/v1/bots/bot1/messages", """{"text":null}"""),
            ("/api/v1/bots/bot1/messages", "{\"text\":\"" + new string('m', 70_000) + "\"}"),
            ("/api/v1/bots/bot1/connection", """{"state":"<script>"}"""),
            ("/api/v1/keys", """{"user":"a b"}"""),
            ("/v1/responses", "{"),
            ("/v1/responses", """{"model":"scripted","input":{"role":"user"}}"""),
            ("/v1/responses", """{"model":"scripted","input":"x","max_output_tokens":"many"}"""),
            ("/v1/chat/completions", """{"model":"scripted","messages":"not an array"}"""),
            ("/v1/chat/completions", """{"model":"scripted","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"""),
        };
        using var socket = server.Socket();
        foreach (var (path, json) in bodies)
        {
            var client = path.StartsWith("/api/v1/keys", StringComparison.Ordinal) ? socket : alice;
            using var response = await client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
            var problem = await response.ShouldBe4xxProblemAsync();
            problem.Detail!.ShouldNotContain("System.", Case.Sensitive, $"{path} {Shorten(json)}: no internals in messages");
        }

        var gets = new List<string>
        {
            "/api/v1/generations?status=exploded",
            "/api/v1/generations?limit=0",
            "/api/v1/generations?limit=abc",
            "/api/v1/generations?limit=100000",
            $"{g}/log?after=-1",
            $"{g}/log?limit=999999",
            $"{g}/events?before=-3",
            $"{g}/stream?after=-1",
            $"{g}/stream?after=abc",
            "/api/v1/bots?status=sideways",
            "/api/v1/bots/bot1/qr?format=gif",
            "/v1/responses/resp_x?stream=true&starting_after=-5",
        };
        foreach (var injection in Injections)
        {
            var escaped = Uri.EscapeDataString(injection);
            gets.Add($"/api/v1/generations/{escaped}");
            gets.Add($"/api/v1/generations/{escaped}/stream");
            gets.Add($"/api/v1/bots/{escaped}");
            gets.Add($"/v1/responses/{escaped}");
            gets.Add($"/api/v1/generations?cursor={escaped}&status={escaped}");
        }

        foreach (var path in gets)
        {
            using var response = await alice.GetAsync(path, HttpCompletionOption.ResponseHeadersRead);
            await response.ShouldBe4xxProblemAsync();
        }

        foreach (var injection in Injections)
        {
            var escaped = Uri.EscapeDataString(injection);
            await (await alice.PostAsync($"/api/v1/generations/{escaped}/cancel", null)).ShouldBe4xxProblemAsync();
            await (await alice.DeleteAsync($"/api/v1/generations/{escaped}")).ShouldBe4xxProblemAsync();
            await (await alice.PostAsync($"/api/v1/bots/{escaped}/end", null)).ShouldBe4xxProblemAsync();
        }

        // Wrong media types and a body over the size limit.
        await (await alice.PostAsync("/api/v1/generations", new StringContent("model=scripted", Encoding.UTF8, "text/plain"))).ShouldBe4xxProblemAsync();
        await (await alice.PostAsync("/api/v1/generations", new ByteArrayContent(new byte[200_000]) { Headers = { ContentType = new("application/json") } })).ShouldBe4xxProblemAsync();
        await (await alice.PutAsync("/api/v1/bots/bot1/auth-state", new StringContent("{}", Encoding.UTF8, "application/json"))).ShouldBe4xxProblemAsync();
        await (await alice.PostAsync("/api/v1/generations", null)).ShouldBe4xxProblemAsync();
        using (var idempotency = new HttpRequestMessage(HttpMethod.Post, "/api/v1/generations") { Content = Http.Json("""{"model":"scripted","input":"x"}""") })
        {
            idempotency.Headers.TryAddWithoutValidation("Idempotency-Key", "'; DROP TABLE x; --");
            await (await alice.SendAsync(idempotency)).ShouldBe4xxProblemAsync();
        }

        // Still serving, and nothing stored changed.
        (await alice.GetAsync("/healthz")).StatusCode.ShouldBe(HttpStatusCode.OK);
        var after = await SnapshotAsync(alice, done.Id);
        after.ShouldBe(before);
    }

    private static async Task<string> SnapshotAsync(HttpClient client, string generationId)
    {
        var text = new StringBuilder();
        text.AppendLine(await client.GetStringAsync("/api/v1/generations?limit=500"));
        text.AppendLine(await client.GetStringAsync("/api/v1/bots?limit=500"));
        text.AppendLine(await client.GetStringAsync($"/api/v1/generations/{generationId}/events"));
        text.AppendLine(await client.GetStringAsync("/api/v1/bots/bot1/events"));
        return text.ToString();
    }

    private static string Shorten(string value) => value.Length <= 60 ? value : value[..60] + "…";
}
