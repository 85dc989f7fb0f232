using System.Net;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>User B cannot see or touch user A's sessions or bots: 404 on every endpoint. An admin can.</summary>
public sealed class OwnershipTests
{
    [Fact(Timeout = 120_000)]
    public async Task OtherUser_GetsNotFoundEverywhere_AdminCanAct_NothingChanges()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "5" });
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));
        using var admin = server.Tcp(await server.CreateKeyAsync("root", admin: true));
        var generation = await (await alice.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", "mine")]))).ReadAsync<Generation>();
        var bot = await (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("alice-bot", "bridge"))).ReadAsync<Bot>();
        await alice.PostJsonAsync("/api/v1/bots/alice-bot/qr", new BotQrUpdate("qr-of-alice"));
        var g = $"/api/v1/generations/{generation.Id}";
        var b = "/api/v1/bots/alice-bot";
        var authState = new ByteArrayContent([1, 2, 3]);
        authState.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        var attempts = new (string What, Func<HttpClient, Task<HttpResponseMessage>> Send)[]
        {
            ("get generation", c => c.GetAsync(g)),
            ("stream", c => c.GetAsync($"{g}/stream", HttpCompletionOption.ResponseHeadersRead)),
            ("log", c => c.GetAsync($"{g}/log")),
            ("events", c => c.GetAsync($"{g}/events")),
            ("pause", c => c.PostAsync($"{g}/pause", null)),
            ("resume", c => c.PostAsync($"{g}/resume", null)),
            ("cancel", c => c.PostAsync($"{g}/cancel", null)),
            ("fork", c => c.PostAsync($"{g}/fork", null)),
            ("delete", c => c.DeleteAsync(g)),
            ("chain after", c => c.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", "x")], PreviousSessionId: generation.Id))),
            ("openai get", c => c.GetAsync($"/v1/responses/resp_{generation.Id}")),
            ("openai stream", c => c.GetAsync($"/v1/responses/resp_{generation.Id}?stream=true", HttpCompletionOption.ResponseHeadersRead)),
            ("openai cancel", c => c.PostAsync($"/v1/responses/resp_{generation.Id}/cancel", null)),
            ("get bot", c => c.GetAsync(b)),
            ("bot qr", c => c.GetAsync($"{b}/qr?format=text")),
            ("bot events", c => c.GetAsync($"{b}/events")),
            ("end bot", c => c.PostAsync($"{b}/end", null)),
            ("bridge qr", c => c.PostJsonAsync($"{b}/qr", new BotQrUpdate("hijack"))),
            ("bridge message", c => c.PostJsonAsync($"{b}/messages", new BotMessage("hijack"))),
            ("bridge connection", c => c.PostJsonAsync($"{b}/connection", new BotConnectionUpdate("connected"))),
            ("auth state read", c => c.GetAsync($"{b}/auth-state")),
            ("auth state write", c => c.PutAsync($"{b}/auth-state", authState)),
        };

        foreach (var (what, send) in attempts)
        {
            using var response = await send(bob);
            ((int)response.StatusCode).ShouldBe(404, $"bob: {what}: {await response.Content.ReadAsStringAsync()}");
            response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json", what);
        }

        (await (await bob.GetAsync("/api/v1/generations")).ReadAsync<ItemPage<Generation>>()).Items.ShouldBeEmpty();
        (await (await bob.GetAsync("/api/v1/bots")).ReadAsync<ItemPage<Bot>>()).Items.ShouldBeEmpty();
        using (var taken = await bob.PostJsonAsync("/api/v1/bots", new StartBotRequest("alice-bot", "bridge")))
        {
            await taken.ShouldBe4xxProblemAsync();
        }

        var generationAfter = await (await alice.GetAsync(g)).ReadAsync<Generation>();
        generationAfter.Status.ShouldNotBe(GenerationStatus.Cancelled);
        generationAfter.DesiredState.ShouldBe("running");
        var botAfter = await (await alice.GetAsync(b)).ReadAsync<Bot>();
        botAfter.QrData.ShouldBe("qr-of-alice");
        botAfter.LastMessage.ShouldBeNull();
        botAfter.Status.ShouldBe(BotStatus.Active);

        // The admin sees and controls everything.
        (await (await admin.GetAsync("/api/v1/generations")).ReadAsync<ItemPage<Generation>>()).Items.ShouldContain(x => x.Id == generation.Id);
        (await (await admin.GetAsync("/api/v1/bots")).ReadAsync<ItemPage<Bot>>()).Items.ShouldContain(x => x.SessionId == "alice-bot");
        var asAdmin = await (await admin.GetAsync(g)).ReadAsync<Generation>();
        asAdmin.Id.ShouldBe(generation.Id);
        asAdmin.Owner.ShouldBe("alice");
        using (var stream = await admin.GetAsync($"{g}/stream?after=0", HttpCompletionOption.ResponseHeadersRead))
        {
            stream.StatusCode.ShouldBe(HttpStatusCode.OK);
            await using var body = await stream.Content.ReadAsStreamAsync();
            await using var events = SseFollower.ReadEventsAsync(body).GetAsyncEnumerator();
            (await events.MoveNextAsync()).ShouldBeTrue("the admin's stream of alice's generation sends events");
            events.Current.Event.ShouldBeOneOf("chunk", "status");
            events.Current.Id.ShouldBe("1", "it starts with the first event of alice's log");
        }

        (await (await admin.PostAsync($"{g}/pause?wait=10", null)).ReadAsync<Generation>()).Status.ShouldBe(GenerationStatus.Paused);
        var resumed = await (await admin.PostAsync($"{g}/resume", Http.Json("""{"reason":"admin resumes"}"""))).ReadAsync<Generation>();
        resumed.Status.ShouldBeOneOf(GenerationStatus.Queued, GenerationStatus.Running);
        resumed.DesiredState.ShouldBe("running");
        (await (await admin.PostAsync($"{g}/pause?wait=10", null)).ReadAsync<Generation>()).Status.ShouldBe(GenerationStatus.Paused);
        var audit = await (await admin.GetAsync($"{g}/events")).ReadAsync<AuditPage>();
        audit.Items.ShouldContain(e => e.Action == "resume" && e.Actor == "root" && e.Detail != null && e.Detail.Contains("admin resumes", StringComparison.Ordinal), string.Join("; ", audit.Items));
        (await (await admin.PostAsync($"{g}/fork", null)).ReadAsync<Generation>()).ForkedFrom.ShouldBe(generation.Id);
        (await (await admin.PostAsync($"{g}/cancel?wait=10", null)).ReadAsync<Generation>()).Status.ShouldBe(GenerationStatus.Cancelled);
        (await admin.DeleteAsync(g)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        var botAsAdmin = await (await admin.GetAsync(b)).ReadAsync<Bot>();
        botAsAdmin.Owner.ShouldBe("alice");
        botAsAdmin.QrData.ShouldBe("qr-of-alice");
        var botAudit = await (await admin.GetAsync($"{b}/events")).ReadAsync<AuditPage>();
        botAudit.Items.ShouldNotBeEmpty();
        botAudit.Items.ShouldAllBe(e => e.SessionId == "alice-bot");
        (await admin.GetAsync($"{b}/qr?format=svg")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await (await admin.PostAsync($"{b}/end", null)).ReadAsync<Bot>()).Status.ShouldBe(BotStatus.Inactive);
        (await (await admin.PostJsonAsync("/api/v1/bots", new StartBotRequest("alice-bot", "bridge"))).ReadAsync<Bot>()).Owner.ShouldBe("alice");
    }
}
