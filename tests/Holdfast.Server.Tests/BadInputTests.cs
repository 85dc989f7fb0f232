using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>
/// One server seeded with a completed generation, a bridge bot with a QR code and auth state, a web bot and API keys,
/// shared by the bad-input tests: none of them may change what it stores.
/// </summary>
public sealed partial class BadInputFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public HttpClient Alice { get; private set; } = null!;

    /// <summary>The Unix socket: the local admin (needed for /api/v1/keys).</summary>
    public HttpClient Socket { get; private set; } = null!;

    public string GenerationId { get; private set; } = null!;

    public string AliceKeyId { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "0",
            ["Server:MaxRequestBodyBytes"] = "65536",
            ["Server:RateLimitBurst"] = "100000",
            ["Server:RateLimitPerSecond"] = "100000",
        });
        Socket = Server.Socket();
        var created = await (await Socket.PostJsonAsync("/api/v1/keys", new CreateApiKeyRequest("alice"))).ReadAsync<CreatedApiKey>();
        AliceKeyId = created.Id;
        Alice = Server.Tcp(created.Key);
        var generation = await (await Alice.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", "keep me")], Parameters: new GenerationParameters(MaxTokens: 5)))).ReadAsync<Generation>();
        GenerationId = (await Poll.UntilAsync(
            async () => await (await Alice.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>(),
            x => x.Status == GenerationStatus.Completed,
            "the seed generation completes")).Id;
        (await Alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("bot1", "bridge"))).EnsureSuccessStatusCode();
        (await Alice.PostJsonAsync("/api/v1/bots/bot1/qr", new BotQrUpdate("qr"))).EnsureSuccessStatusCode();
        (await Alice.PutAsync("/api/v1/bots/bot1/auth-state", Bytes([1, 2, 3]))).EnsureSuccessStatusCode();
        (await Alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("webbot", "web"))).EnsureSuccessStatusCode();
    }

    public async Task DisposeAsync()
    {
        Alice.Dispose();
        Socket.Dispose();
        await Server.DisposeAsync();
    }

    public static ByteArrayContent Bytes(byte[] content)
    {
        var body = new ByteArrayContent(content);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return body;
    }

    /// <summary>
    /// Everything stored, as the API shows it: generations, bots, both audit trails, the bot's auth state and the API
    /// keys (without <c>last_used_at</c>, which every authenticated request may touch once a minute by design).
    /// </summary>
    public async Task<string> SnapshotAsync()
    {
        var text = new StringBuilder();
        text.AppendLine(await Alice.GetStringAsync("/api/v1/generations?limit=500"));
        text.AppendLine(await Alice.GetStringAsync("/api/v1/bots?limit=500"));
        text.AppendLine(await Alice.GetStringAsync($"/api/v1/generations/{GenerationId}/events"));
        text.AppendLine(await Alice.GetStringAsync($"/api/v1/generations/{GenerationId}/log"));
        text.AppendLine(await Alice.GetStringAsync("/api/v1/bots/bot1/events"));
        text.AppendLine(await Alice.GetStringAsync("/api/v1/bots/webbot/events"));
        text.AppendLine(Convert.ToHexString(await Alice.GetByteArrayAsync("/api/v1/bots/bot1/auth-state")));
        var keys = JsonNode.Parse(await Socket.GetStringAsync("/api/v1/keys"))!;
        foreach (var key in keys["items"]!.AsArray())
        {
            key!.AsObject().Remove("last_used_at");
        }

        text.AppendLine(keys.ToJsonString());

        // A bot's lease is renewed every few seconds by its holder: its expiry moves without anything being changed.
        return RenewedLeaseExpiry().Replace(text.ToString(), "\"lease_expires_at\":\"(renewed)\"");
    }

    [System.Text.RegularExpressions.GeneratedRegex("\"lease_expires_at\":\"[^\"]*\"", System.Text.RegularExpressions.RegexOptions.CultureInvariant, 1000)]
    private static partial System.Text.RegularExpressions.Regex RenewedLeaseExpiry();
}

/// <summary>
/// Bad input on every endpoint answers a 4xx problem+json with a message, the server keeps serving, and nothing
/// stored changes.
/// </summary>
public sealed class BadInputTests(BadInputFixture fixture) : IClassFixture<BadInputFixture>
{
    private static readonly string[] Injections =
    [
        "'; DROP TABLE generation_sessions; --",
        "a'; DROP TABLE x;--",
        "../../etc/passwd",
        "../x",
        "<script>alert(1)</script>",
        "%00",
        "a b",
        "ünïcødé",
        "日本語",
        "😀",
        new string('x', 200),
        new string('x', 300),
    ];

    [Fact(Timeout = 180_000)]
    public async Task EveryEndpoint_WrongShapesAndValues_Is4xxProblem_ServerKeepsServing_DataUnchanged()
    {
        var alice = fixture.Alice;
        var before = await fixture.SnapshotAsync();
        var g = $"/api/v1/generations/{fixture.GenerationId}";

        var huge = new string('a', 200_000);
        var bodies = new (string Path, string Json)[]
        {
            ("/api/v1/generations", "[]"),
            ("/api/v1/generations", "\"just a string\""),
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
            ($"{g}/pause", $$"""{"reason":"{{new string('r', 201)}}"}"""),
            ($"{g}/resume", """{"expected_version":"one"}"""),
            ($"{g}/fork", """{"at_seq":-5}"""),
            ($"{g}/fork", """{"at_seq":"x"}"""),
            ("/api/v1/bots", """{"session_id":"../../etc"}"""),
            ("/api/v1/bots", """{"session_id":"ok","bot_type":"telepathy"}"""),
            ("/api/v1/bots", """{"session_id":null}"""),
            ("/api/v1/bots/bot1/qr", """{"qr_data":5}"""),
            ("/api/v1/bots/bot1/qr", """{"qr_data":""}"""),
            ("/api/v1/bots/bot1/messages", """{"text":null}"""),
            ("/api/v1/bots/bot1/messages", "{\"text\":\"" + new string('m', 70_000) + "\"}"),
            ("/api/v1/bots/bot1/connection", """{"state":"<script>"}"""),
            ("/api/v1/keys", """{"user":"a b"}"""),
            ("/api/v1/keys", """{"user":"ok","admin":"yes"}"""),
            ("/v1/responses", """{"model":"scripted","input":{"role":"user"}}"""),
            ("/v1/responses", """{"model":"scripted","input":"x","max_output_tokens":"many"}"""),
            ("/v1/responses", """{"model":"scripted","input":"x","previous_response_id":"resp_'; DROP TABLE x;--"}"""),
            ("/v1/chat/completions", """{"model":"scripted","messages":"not an array"}"""),
            ("/v1/chat/completions", """{"model":"scripted","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"""),
            ("/pair/webbot/device", """{"token":42}"""),
        };
        foreach (var (path, json) in bodies)
        {
            var client = path.StartsWith("/api/v1/keys", StringComparison.Ordinal) ? fixture.Socket : alice;
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
            "/api/v1/bots?limit=-1",
            "/api/v1/bots/bot1/qr?format=gif",
            "/v1/responses/resp_x?stream=true&starting_after=-5",
        };
        foreach (var injection in Injections)
        {
            var escaped = Uri.EscapeDataString(injection);
            gets.Add($"/api/v1/generations?cursor={escaped}&status={escaped}");
            gets.Add($"/api/v1/bots?cursor={escaped}");
        }

        foreach (var path in gets)
        {
            using var response = await alice.GetAsync(path, HttpCompletionOption.ResponseHeadersRead);
            await response.ShouldBe4xxProblemAsync();
        }

        // Wrong media types, and no body where one is needed.
        await (await alice.PostAsync("/api/v1/generations", new StringContent("model=scripted", Encoding.UTF8, "text/plain"))).ShouldBe4xxProblemAsync();
        await (await alice.PutAsync("/api/v1/bots/bot1/auth-state", new StringContent("{}", Encoding.UTF8, "application/json"))).ShouldBe4xxProblemAsync();
        await (await alice.PostAsync("/api/v1/generations", null)).ShouldBe4xxProblemAsync();
        await (await alice.PostAsync("/v1/responses", null)).ShouldBe4xxProblemAsync();
        using (var idempotency = new HttpRequestMessage(HttpMethod.Post, "/api/v1/generations") { Content = Http.Json("""{"model":"scripted","input":"x"}""") })
        {
            idempotency.Headers.TryAddWithoutValidation("Idempotency-Key", "'; DROP TABLE x; --");
            await (await alice.SendAsync(idempotency)).ShouldBe4xxProblemAsync();
        }

        // Still serving, and nothing stored changed.
        (await alice.GetAsync("/healthz")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await fixture.SnapshotAsync()).ShouldBe(before);
    }

    [Fact(Timeout = 120_000)]
    public async Task EveryBodyRoute_MalformedJsonAndUnknownField_Is400Problem_DataUnchanged()
    {
        var before = await fixture.SnapshotAsync();
        var g = $"/api/v1/generations/{fixture.GenerationId}";
        // Each route with a body it accepts; "surprise_field" is added to it, and "{" / a cut-off body replace it.
        var routes = new (string Path, string ValidBody)[]
        {
            ("/api/v1/generations", """{"model":"scripted","input":"x"}"""),
            ($"{g}/pause", """{"reason":"x"}"""),
            ($"{g}/resume", """{"reason":"x"}"""),
            ($"{g}/cancel", """{"reason":"x"}"""),
            ($"{g}/fork", """{"at_seq":1}"""),
            ("/api/v1/bots", """{"session_id":"newbot","bot_type":"bridge"}"""),
            ("/api/v1/bots/bot1/qr", """{"qr_data":"q"}"""),
            ("/api/v1/bots/bot1/messages", """{"text":"t"}"""),
            ("/api/v1/bots/bot1/connection", """{"state":"connected"}"""),
            ("/api/v1/keys", """{"user":"mallory"}"""),
            ("/v1/responses", """{"model":"scripted","input":"x"}"""),
            ("/v1/chat/completions", """{"model":"scripted","messages":[{"role":"user","content":"x"}]}"""),
            ("/pair/webbot/device", """{"token":"t"}"""),
            ("/pair/webbot/messages", """{"text":"t"}"""),
        };
        foreach (var (path, valid) in routes)
        {
            var client = path.StartsWith("/api/v1/keys", StringComparison.Ordinal) ? fixture.Socket : fixture.Alice;
            var cases = new (string Json, string Named)[]
            {
                ("{", "JSON"),
                (valid[..^1], "JSON"),
                ("""{"surprise_field":1}""", "surprise_field"),
                (valid[..^1] + ""","surprise_field":{"nested":[1,2]}}""", "surprise_field"),
            };
            foreach (var (json, named) in cases)
            {
                using var response = await client.PostAsync(path, Http.Json(json));
                var problem = await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest);
                problem.Detail!.ShouldContain(named, Case.Sensitive, $"POST {path} {json}: the message names the problem");
            }
        }

        // The auth state is a blob, not JSON: a JSON body is refused as the wrong media type.
        using (var json = await fixture.Alice.PutAsync("/api/v1/bots/bot1/auth-state", Http.Json("{")))
        {
            await json.ShouldBeProblemAsync(HttpStatusCode.UnsupportedMediaType);
        }

        (await fixture.Alice.GetAsync("/healthz")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await fixture.SnapshotAsync()).ShouldBe(before);
    }

    [Fact(Timeout = 180_000)]
    public async Task EveryIdRoute_BadOrInjectedId_Is4xxProblem_DataUnchanged()
    {
        var before = await fixture.SnapshotAsync();
        var alice = fixture.Alice;
        foreach (var injection in Injections)
        {
            var id = Uri.EscapeDataString(injection);
            var attempts = new (string What, Func<Task<HttpResponseMessage>> Send)[]
            {
                ("get generation", () => alice.GetAsync($"/api/v1/generations/{id}")),
                ("pause", () => alice.PostAsync($"/api/v1/generations/{id}/pause", null)),
                ("resume", () => alice.PostAsync($"/api/v1/generations/{id}/resume", null)),
                ("cancel", () => alice.PostAsync($"/api/v1/generations/{id}/cancel", null)),
                ("pause with body", () => alice.PostAsync($"/api/v1/generations/{id}/pause?wait=1", Http.Json("""{"reason":"x"}"""))),
                ("fork", () => alice.PostAsync($"/api/v1/generations/{id}/fork", Http.Json("""{"at_seq":1}"""))),
                ("delete", () => alice.DeleteAsync($"/api/v1/generations/{id}")),
                ("events", () => alice.GetAsync($"/api/v1/generations/{id}/events")),
                ("log", () => alice.GetAsync($"/api/v1/generations/{id}/log")),
                ("stream", () => alice.GetAsync($"/api/v1/generations/{id}/stream", HttpCompletionOption.ResponseHeadersRead)),
                ("get bot", () => alice.GetAsync($"/api/v1/bots/{id}")),
                ("bot qr", () => alice.GetAsync($"/api/v1/bots/{id}/qr?format=text")),
                ("bot end", () => alice.PostAsync($"/api/v1/bots/{id}/end", null)),
                ("bot events", () => alice.GetAsync($"/api/v1/bots/{id}/events")),
                ("bridge qr", () => alice.PostJsonAsync($"/api/v1/bots/{id}/qr", new BotQrUpdate("q"))),
                ("bridge message", () => alice.PostJsonAsync($"/api/v1/bots/{id}/messages", new BotMessage("m"))),
                ("bridge connection", () => alice.PostJsonAsync($"/api/v1/bots/{id}/connection", new BotConnectionUpdate("connected"))),
                ("auth state read", () => alice.GetAsync($"/api/v1/bots/{id}/auth-state")),
                ("auth state write", () => alice.PutAsync($"/api/v1/bots/{id}/auth-state", BadInputFixture.Bytes([9]))),
                ("revoke key", () => fixture.Socket.DeleteAsync($"/api/v1/keys/{id}")),
                ("openai get", () => alice.GetAsync($"/v1/responses/{id}")),
                ("openai get resp_", () => alice.GetAsync($"/v1/responses/resp_{id}")),
                ("openai stream", () => alice.GetAsync($"/v1/responses/resp_{id}?stream=true", HttpCompletionOption.ResponseHeadersRead)),
                ("openai cancel", () => alice.PostAsync($"/v1/responses/resp_{id}/cancel", null)),
                ("openai pause", () => alice.PostAsync($"/v1/responses/resp_{id}/pause", null)),
                ("openai resume", () => alice.PostAsync($"/v1/responses/resp_{id}/resume", null)),
                ("pairing page", () => alice.GetAsync($"/pair/{id}")),
                ("pairing device", () => alice.PostJsonAsync($"/pair/{id}/device", new { token = "t" })),
                ("pairing message", () => alice.PostJsonAsync($"/pair/{id}/messages", new { text = "t" })),
            };
            foreach (var (what, send) in attempts)
            {
                using var response = await send();
                var problem = await response.ShouldBe4xxProblemAsync();
                problem.Detail!.ShouldNotContain("System.", Case.Sensitive, $"{what} {injection}: no internals in messages");
            }
        }

        // The unescaped "../x": the client normalises the dot segment away, and what is left names an unknown id.
        using (var dotted = await alice.PostAsync($"/api/v1/generations/{fixture.GenerationId}/../x/pause", null))
        {
            await dotted.ShouldBe4xxProblemAsync();
        }

        (await alice.GetAsync("/healthz")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await fixture.SnapshotAsync()).ShouldBe(before);
    }

    [Fact(Timeout = 120_000)]
    public async Task Bodies_OverTheLimit_Are413Problem_DataUnchanged()
    {
        var before = await fixture.SnapshotAsync();
        var alice = fixture.Alice;
        var overLimit = "{\"model\":\"scripted\",\"input\":\"" + new string('a', 70_000) + "\"}"; // Server:MaxRequestBodyBytes is 65536 here
        foreach (var path in new[] { "/api/v1/generations", "/v1/responses", "/v1/chat/completions", "/api/v1/bots/bot1/messages" })
        {
            // Expect: 100-continue lets the server refuse before the body is sent (else it may close while the
            // client still uploads, a broken pipe instead of the 413).
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Http.Json(overLimit) };
            request.Headers.ExpectContinue = true;
            using var response = await alice.SendAsync(request);
            (await response.ShouldBeProblemAsync(HttpStatusCode.RequestEntityTooLarge)).Detail!.ShouldContain("larger than");
        }

        // The auth state has its own, larger limit (1 MiB), and one byte more is refused.
        using (var tooBig = new HttpRequestMessage(HttpMethod.Put, "/api/v1/bots/bot1/auth-state") { Content = BadInputFixture.Bytes(new byte[(1024 * 1024) + 2]) })
        {
            // The same Expect: 100-continue (a 1 MiB upload cut by the early 413 failed with a broken pipe in CI).
            tooBig.Headers.ExpectContinue = true;
            using var authState = await alice.SendAsync(tooBig);
            var problem = await authState.ShouldBe4xxProblemAsync();
            ((int)authState.StatusCode).ShouldBeOneOf(400, 413);
            problem.Detail!.ShouldContain("larger than");
        }

        (await alice.GetAsync("/healthz")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await fixture.SnapshotAsync()).ShouldBe(before);
    }

    [Theory(Timeout = 60_000)]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("0x10")]
    [InlineData("99999999999999999999")]
    public async Task Stream_BadLastEventId_Is400ProblemNamingTheHeader(string lastEventId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/generations/{fixture.GenerationId}/stream");
        request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);

        using var response = await fixture.Alice.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        (await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest)).Detail!.ShouldContain("Last-Event-ID");
        using var good = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/generations/{fixture.GenerationId}/stream");
        good.Headers.TryAddWithoutValidation("Last-Event-ID", "1");
        using var ok = await fixture.Alice.SendAsync(good, HttpCompletionOption.ResponseHeadersRead);
        ok.StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    private static string Shorten(string value) => value.Length <= 60 ? value : value[..60] + "…";
}
