using System.Net;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

/// <summary>
/// Signed webhooks end to end (issue 12, item 7): a receiver on loopback verifies every signature with the Standard
/// Webhooks reference library; retries keep the id; loopback and private targets are refused before any connection
/// unless allowed. Only loopback traffic: the refused addresses are never connected to.
/// </summary>
public sealed class WebhookDeliveryTests
{
    private static Dictionary<string, string?> AllowLoopback() => new(StringComparer.Ordinal)
    {
        ["Webhooks:AllowPrivateTargets"] = "true",
        ["Webhooks:PollInterval"] = "00:00:00.100",
        ["Webhooks:RetryBaseDelay"] = "00:00:00.100",
        ["Webhooks:RetryMaxDelay"] = "00:00:00.500",
    };

    [Fact(Timeout = 120_000)]
    public async Task BotAndGenerationEvents_LoopbackReceiver_EveryOneSignedAndLoggedDelivered()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await TestServer.StartAsync(AllowLoopback());
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var created = await (await alice.PostJsonAsync("/api/v1/webhooks", new CreateWebhookRequest(receiver.Url.ToString()))).ReadAsync<CreatedWebhook>();
        receiver.Secret = created.Secret;

        (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).EnsureSuccessStatusCode();
        (await alice.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@first-qr"))).EnsureSuccessStatusCode();
        (await alice.PostJsonAsync("/api/v1/bots/wa-1/connection", new BotConnectionUpdate("connected"))).EnsureSuccessStatusCode();
        (await alice.PostJsonAsync("/api/v1/bots/wa-1/messages", new BotMessage("hello from the phone"))).EnsureSuccessStatusCode();
        (await alice.PostAsync("/api/v1/bots/wa-1/end", null)).EnsureSuccessStatusCode();
        var generation = await (await alice.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", "hi")]))).ReadAsync<Holdfast.Client.Models.Generation>();

        string[] expected = ["qrcode.updated", "connection.updated", "message.received", "session.ended", "generation.started", "generation.completed"];
        await Poll.UntilAsync(() => Task.FromResult(expected.All(t => receiver.Accepted.Any(w => w.Type == t))), "every event type at the receiver", TimeSpan.FromSeconds(60));
        var log = await Poll.UntilAsync(
            async () => await (await alice.GetAsync($"/api/v1/webhooks/{created.Id}/deliveries")).ReadAsync<ItemPage<WebhookDeliveryInfo>>(),
            page => page.Items.Count >= expected.Length && page.Items.All(d => d.Status == "delivered"),
            "the delivery log to show every event delivered");

        receiver.Received.ShouldAllBe(w => w.Verified, string.Join("; ", receiver.Received.Where(w => !w.Verified).Select(w => w.VerifyError)));
        receiver.Received.Select(w => w.Id).Order().ShouldBe(log.Items.Select(d => d.Id).Order());
        log.Items.ShouldAllBe(d => d.Attempts == 1 && d.LastStatus == 204);
        var message = receiver.Accepted.Single(w => w.Type == "message.received");
        message.Data.GetProperty("session_id").GetString().ShouldBe("wa-1");
        message.Data.GetProperty("last_message").GetString().ShouldBe("hello from the phone");
        receiver.Accepted.Single(w => w.Type == "generation.completed").Data.GetProperty("session_id").GetString().ShouldBe(generation.Id);
        receiver.Accepted.Single(w => w.Type == "qrcode.updated").Data.GetProperty("qr_data").GetString().ShouldBe("2@first-qr");
    }

    [Fact(Timeout = 120_000)]
    public async Task Delivery_ReceiverFailsTwice_RetriedWithBackoffSameIdThenDelivered()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await TestServer.StartAsync(AllowLoopback());
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var created = await (await alice.PostJsonAsync("/api/v1/webhooks", new CreateWebhookRequest(receiver.Url.ToString(), ["message.received"]))).ReadAsync<CreatedWebhook>();
        receiver.Secret = created.Secret;
        receiver.FailNext(2);

        (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).EnsureSuccessStatusCode();
        (await alice.PostJsonAsync("/api/v1/bots/wa-1/messages", new BotMessage("retry me"))).EnsureSuccessStatusCode();

        var log = await Poll.UntilAsync(
            async () => await (await alice.GetAsync($"/api/v1/webhooks/{created.Id}/deliveries")).ReadAsync<ItemPage<WebhookDeliveryInfo>>(),
            page => page.Items.Count == 1 && page.Items[0].Status == "delivered",
            "the delivery to succeed on its third attempt",
            TimeSpan.FromSeconds(60));
        receiver.Received.Count.ShouldBe(3);
        receiver.Received.Select(w => w.Id).Distinct().ShouldBe([log.Items[0].Id]);
        receiver.Received.ShouldAllBe(w => w.Verified);
        log.Items[0].Attempts.ShouldBe(3);
        log.Items[0].LastStatus.ShouldBe(204);
    }

    [Fact(Timeout = 60_000)]
    public async Task Create_LoopbackOrPrivateTargetNotAllowed_400AndNothingConnected()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await TestServer.StartAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var port = receiver.Url.Port;

        foreach (var url in new[] { receiver.Url.ToString(), $"http://localhost:{port}/hook", $"http://[::1]:{port}/hook", "http://10.1.2.3/hook", "http://192.168.0.10/hook", "http://169.254.169.254/latest", "http://[fd00::1]/hook", "http://[::ffff:127.0.0.1]:1/hook" })
        {
            var problem = await (await alice.PostJsonAsync("/api/v1/webhooks", new CreateWebhookRequest(url))).ShouldBeProblemAsync(HttpStatusCode.BadRequest);
            problem.Detail.ShouldNotBeNull().ShouldContain("Webhooks:AllowPrivateTargets", customMessage: url);
        }

        (await (await alice.GetAsync("/api/v1/webhooks")).ReadAsync<ItemPage<Webhook>>()).Items.ShouldBeEmpty();
        receiver.Received.ShouldBeEmpty();
    }

    [Fact(Timeout = 120_000)]
    public async Task Delivery_NameResolvesToLoopbackAfterAllowWasTurnedOff_RefusedBeforeConnectingAndLoggedFailed()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        using var data = new TempDirectory("hf");
        string key, id;
        await using (var allowing = await TestServer.StartAsync(AllowLoopback(), data.Path))
        {
            key = await allowing.CreateKeyAsync("alice");
            using var alice = allowing.Tcp(key);
            id = (await (await alice.PostJsonAsync("/api/v1/webhooks", new CreateWebhookRequest($"http://localhost:{receiver.Url.Port}/hook", ["message.received"]))).ReadAsync<CreatedWebhook>()).Id;
        }

        var settings = AllowLoopback();
        settings["Webhooks:AllowPrivateTargets"] = "false";
        await using var server = await TestServer.StartAsync(settings, data.Path);
        using var client = server.Tcp(key);
        (await client.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).EnsureSuccessStatusCode();
        (await client.PostJsonAsync("/api/v1/bots/wa-1/messages", new BotMessage("must not leave"))).EnsureSuccessStatusCode();

        var log = await Poll.UntilAsync(
            async () => await (await client.GetAsync($"/api/v1/webhooks/{id}/deliveries")).ReadAsync<ItemPage<WebhookDeliveryInfo>>(),
            page => page.Items.Count == 1 && page.Items[0].Status == "failed",
            "the delivery to be refused");
        log.Items[0].LastError.ShouldNotBeNull().ShouldStartWith("refused: ");
        log.Items[0].LastStatus.ShouldBeNull();
        receiver.Received.ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task Subscriptions_OtherUsersAnd404_ListDeleteAndBadInput()
    {
        await using var server = await TestServer.StartAsync(AllowLoopback());
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));
        var created = await (await alice.PostJsonAsync("/api/v1/webhooks", new CreateWebhookRequest("http://127.0.0.1:9/hook", ["session.ended"]))).ReadAsync<CreatedWebhook>();

        var bobSees = await (await bob.GetAsync("/api/v1/webhooks")).ReadAsync<ItemPage<Webhook>>();
        var bobGets = await bob.GetAsync($"/api/v1/webhooks/{created.Id}");
        var bobDeletes = await bob.DeleteAsync($"/api/v1/webhooks/{created.Id}");
        var bobLog = await bob.GetAsync($"/api/v1/webhooks/{created.Id}/deliveries");
        var missing = await alice.GetAsync("/api/v1/webhooks/wh_000000000000000000000000");
        var badType = await alice.PostJsonAsync("/api/v1/webhooks", new CreateWebhookRequest("http://127.0.0.1:9/hook", ["message.sent"]));
        var badSecret = await alice.PostJsonAsync("/api/v1/webhooks", new CreateWebhookRequest("http://127.0.0.1:9/hook", null, "not-a-secret"));
        var badScheme = await alice.PostJsonAsync("/api/v1/webhooks", new CreateWebhookRequest("ftp://example.com/hook"));

        created.Secret.ShouldStartWith("whsec_");
        bobSees.Items.ShouldBeEmpty();
        (await bobGets.ShouldBeProblemAsync(HttpStatusCode.NotFound)).Detail.ShouldBe((await missing.ShouldBeProblemAsync(HttpStatusCode.NotFound)).Detail!.Replace("wh_000000000000000000000000", created.Id, StringComparison.Ordinal));
        await bobDeletes.ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await bobLog.ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await badType.ShouldBeProblemAsync(HttpStatusCode.BadRequest);
        await badSecret.ShouldBeProblemAsync(HttpStatusCode.BadRequest);
        await badScheme.ShouldBeProblemAsync(HttpStatusCode.BadRequest);
        var mine = await (await alice.GetAsync("/api/v1/webhooks")).ReadAsync<ItemPage<Webhook>>();
        mine.Items.Single().EventTypes.ShouldBe(["session.ended"]);
        mine.Items.Single().Url.ShouldBe("http://127.0.0.1:9/hook");
        (await alice.DeleteAsync($"/api/v1/webhooks/{created.Id}")).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await (await alice.GetAsync("/api/v1/webhooks")).ReadAsync<ItemPage<Webhook>>()).Items.ShouldBeEmpty();
    }
}
