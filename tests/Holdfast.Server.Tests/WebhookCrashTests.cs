using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

/// <summary>
/// At-least-once webhooks across a crash: the real <c>holdfast serve</c> is SIGKILLed while deliveries are in flight
/// (the loopback receiver holds them open); after the restart every event arrives, with the id it had before.
/// </summary>
public sealed class WebhookCrashTests
{
    [Fact(Timeout = 240_000)]
    public async Task Deliveries_ServerSigkilledMidDelivery_AfterRestartEveryEventArrivesWithTheSameId()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Hold = true;
        using var data = new TempDirectory("hf");
        var port = ServeProcess.FreePort();
        var environment = new Dictionary<string, string>
        {
            ["Webhooks__AllowPrivateTargets"] = "true",
            ["Webhooks__PollInterval"] = "00:00:00.100",
            ["Webhooks__RetryBaseDelay"] = "00:00:00.100",
            ["Webhooks__RetryMaxDelay"] = "00:00:01",
            ["Webhooks__Timeout"] = "00:00:10",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        var serve = await ServeProcess.StartAsync(data.Path, port, environment);
        try
        {
            string key;
            using (var socket = UnixSocketHttp.Create(Path.Combine(data.Path, "holdfast.sock")))
            {
                key = (await (await socket.PostJsonAsync("/api/v1/keys", new CreateApiKeyRequest("alice"))).ReadAsync<CreatedApiKey>()).Key;
            }

            HttpClient Client()
            {
                var client = new HttpClient { BaseAddress = serve.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
                client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
                return client;
            }

            string subscription;
            IReadOnlyList<string> before;
            using (var alice = Client())
            {
                var created = await (await alice.PostJsonAsync("/api/v1/webhooks", new CreateWebhookRequest(receiver.Url.ToString(), ["message.received"]))).ReadAsync<CreatedWebhook>();
                receiver.Secret = created.Secret;
                subscription = created.Id;
                (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).EnsureSuccessStatusCode();
                var at = DateTimeOffset.UtcNow;
                for (var i = 0; i < 20; i++)
                {
                    (await alice.PostJsonAsync("/api/v1/bots/wa-1/messages", new BotMessage($"message {i}", at.AddMilliseconds(i)))).EnsureSuccessStatusCode();
                }

                await Poll.UntilAsync(() => Task.FromResult(receiver.InFlight > 0), "a delivery in flight at the receiver");
                before = (await (await alice.GetAsync($"/api/v1/webhooks/{subscription}/deliveries?limit=100")).ReadAsync<ItemPage<WebhookDeliveryInfo>>()).Items.Select(d => d.Id).ToList();
            }

            // Mid-delivery: requests are held open at the receiver, nothing was answered yet.
            var inFlightAtKill = receiver.Received.Select(w => w.Id).ToList();
            await serve.KillAsync();
            serve.Dispose();
            receiver.Accepted.ShouldBeEmpty();
            receiver.Release();

            serve = await ServeProcess.StartAsync(data.Path, port, environment);
            using var after = Client();
            var log = await Poll.UntilAsync(
                async () => (await (await after.GetAsync($"/api/v1/webhooks/{subscription}/deliveries?limit=100")).ReadAsync<ItemPage<WebhookDeliveryInfo>>()).Items,
                items => items.Count == 20 && items.All(d => d.Status == "delivered"),
                "every delivery delivered after the restart",
                TimeSpan.FromSeconds(120));

            before.Count.ShouldBe(20);
            inFlightAtKill.ShouldNotBeEmpty();
            log.Select(d => d.Id).Order().ShouldBe(before.Order());
            receiver.Accepted.Select(w => w.Id).Distinct().Order().ShouldBe(before.Order());
            inFlightAtKill.ShouldAllBe(id => before.Contains(id));
            receiver.Received.ShouldAllBe(w => w.Verified);
            receiver.Accepted.Select(w => w.Data.GetProperty("last_message").GetString()).Distinct().Count().ShouldBe(20);
        }
        finally
        {
            serve.Dispose();
        }
    }
}
