using System.Text.Json;
using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.Webhooks;

namespace Holdfast.Storage.Contract;

/// <summary>
/// Webhook subscriptions and the outbox (issue 12, item 7), closed over every provider: events are written in the
/// transaction of their change (none when the change fails), only for subscriptions of the session's owner that
/// list the type; deliveries are claimed under a lease, once per node, and their attempts logged.
/// </summary>
public abstract class WebhookStoreContractTests(IStoreProvider provider) : StoreContractTests(provider)
{
    private static readonly Actor Alice = new("alice");
    private static readonly TimeSpan ClaimLease = TimeSpan.FromSeconds(40);

    private IWebhookStore Webhooks => Store.Webhooks ?? throw new InvalidOperationException("The provider gives no webhook store.");

    [Fact(Timeout = 30_000)]
    public async Task BotChanges_OwnersSubscription_OneOutboxRowPerEventWithItsPayload()
    {
        var all = await SubscribeAsync("wh_all", "alice", WebhookEvents.All);
        var endedOnly = await SubscribeAsync("wh_end", "alice", [WebhookEvents.SessionEnded]);
        var bobs = await SubscribeAsync("wh_bob", "bob", WebhookEvents.All);
        await Store.Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "alice"), Alice);

        await Store.Bots.SetQrAsync("bot1", "2@qr-one", Alice);
        Clock.Advance(TimeSpan.FromSeconds(1));
        await Store.Bots.RecordMessageAsync("bot1", "hello", Clock.GetUtcNow(), Alice);
        await Store.Bots.RecordMessageAsync("bot1", "older, ignored", Clock.GetUtcNow().AddMinutes(-1), Alice);
        Clock.Advance(TimeSpan.FromSeconds(1));
        await Store.Bots.SetConnectionStateAsync("bot1", BotConnectionState.Connected, null, null, Alice);
        Clock.Advance(TimeSpan.FromSeconds(1));
        await Store.Bots.EndAsync("bot1", Alice);

        var log = (await Webhooks.ListDeliveriesAsync(all.Id, null, 100)).Items.Reverse().ToList();
        log.Select(d => d.EventType).ShouldBe([WebhookEvents.QrCodeUpdated, WebhookEvents.MessageReceived, WebhookEvents.ConnectionUpdated, WebhookEvents.SessionEnded]);
        log.ShouldAllBe(d => d.Status == WebhookDeliveryStatus.Pending && d.Attempts == 0 && d.SessionId == "bot1" && d.SessionKind == "bot" && d.Id.StartsWith("msg_"));
        log.Select(d => d.Id).Distinct().Count().ShouldBe(4);
        (await Webhooks.ListDeliveriesAsync(endedOnly.Id, null, 100)).Items.Select(d => d.EventType).ShouldBe([WebhookEvents.SessionEnded]);
        (await Webhooks.ListDeliveriesAsync(bobs.Id, null, 100)).Items.ShouldBeEmpty();

        var claimed = await Webhooks.ClaimDueAsync(100, ClaimLease);
        var message = claimed.Single(d => d.Delivery.EventType == WebhookEvents.MessageReceived);
        message.Url.ShouldBe("https://example.test/hook");
        message.ProtectedSecret.ShouldBe(new byte[] { 1, 2, 3 });
        using var payload = JsonDocument.Parse(message.Payload);
        payload.RootElement.GetProperty("type").GetString().ShouldBe(WebhookEvents.MessageReceived);
        var data = payload.RootElement.GetProperty("data");
        data.GetProperty("session_id").GetString().ShouldBe("bot1");
        data.GetProperty("last_message").GetString().ShouldBe("hello");
        var qr = JsonDocument.Parse(claimed.Single(d => d.Delivery.EventType == WebhookEvents.QrCodeUpdated).Payload).RootElement.GetProperty("data");
        qr.GetProperty("qr_seq").GetInt64().ShouldBe(1);
        qr.GetProperty("qr_data").GetString().ShouldBe("2@qr-one");
    }

    [Fact(Timeout = 30_000)]
    public async Task Change_AuditWriteFails_NoOutboxRowEither()
    {
        var subscription = await SubscribeAsync("wh_all", "alice", WebhookEvents.All);
        await Store.Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "alice"), Alice);

        await using (await Provider.FailAuditWritesAsync(Store))
        {
            await Should.ThrowAsync<Exception>(() => Store.Bots.RecordMessageAsync("bot1", "lost", Alice));
        }

        (await Webhooks.ListDeliveriesAsync(subscription.Id, null, 100)).Items.ShouldBeEmpty();
        (await Store.Bots.FindAsync("bot1"))!.LastMessage.ShouldBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task GenerationRun_StartedAndCompletedEvents_ForTheOwnersSubscription()
    {
        var subscription = await SubscribeAsync("wh_gen", "alice", WebhookEvents.All);

        await Store.Generations.CreateAsync(GenerationData.NewSession("gen_1"), Alice);
        Clock.Advance(TimeSpan.FromSeconds(1));
        var claim = (await Store.Runs.ClaimRunnableAsync(new Generation.RunClaimRequest("node-a", GenerationData.Lease, 10), _ => new Generation.ClaimChoice(true))).Single();
        Clock.Advance(TimeSpan.FromSeconds(1));
        await Store.Runs.CommitAsync(
            [new Generation.ChunkAppend("gen_1", claim.Lease.FencingToken, claim.Change.Session.LastSeq + 1, "a")],
            [new Generation.RunFinish("gen_1", claim.Lease.FencingToken, Generation.GenerationCommand.Complete, claim.Change.Session.LastSeq + 1, FinishReason: "stop")]);

        var log = (await Webhooks.ListDeliveriesAsync(subscription.Id, null, 100)).Items.Reverse().ToList();
        log.Select(d => d.EventType).ShouldBe([WebhookEvents.GenerationStarted, WebhookEvents.GenerationCompleted]);
        log.ShouldAllBe(d => d.SessionKind == "generation" && d.SessionId == "gen_1");
    }

    [Fact(Timeout = 30_000)]
    public async Task ClaimDueAsync_Lease_ClaimedOnceUntilTheLeaseEndsThenAgainWithTheSameId()
    {
        await SubscribeAsync("wh_all", "alice", WebhookEvents.All);
        await Store.Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "alice"), Alice);
        await Store.Bots.RecordMessageAsync("bot1", "hello", Alice);

        var first = await Webhooks.ClaimDueAsync(10, ClaimLease);
        var whileLeased = await Webhooks.ClaimDueAsync(10, ClaimLease);
        Clock.Advance(ClaimLease + TimeSpan.FromSeconds(1));
        var afterLease = await Webhooks.ClaimDueAsync(10, ClaimLease);

        first.Count.ShouldBe(1);
        whileLeased.ShouldBeEmpty();
        afterLease.Single().Delivery.Id.ShouldBe(first.Single().Delivery.Id);
        afterLease.Single().Payload.ShouldBe(first.Single().Payload);
    }

    [Fact(Timeout = 30_000)]
    public async Task RecordAttemptAsync_RetryThenDelivered_LoggedAndNeverClaimedAgain()
    {
        var subscription = await SubscribeAsync("wh_all", "alice", WebhookEvents.All);
        await Store.Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "alice"), Alice);
        await Store.Bots.RecordMessageAsync("bot1", "hello", Alice);
        var id = (await Webhooks.ClaimDueAsync(10, ClaimLease)).Single().Delivery.Id;

        await Webhooks.RecordAttemptAsync(new WebhookAttempt(id, false, 503, "HTTP 503", Clock.GetUtcNow().AddSeconds(5)));
        var beforeRetry = await Webhooks.ClaimDueAsync(10, ClaimLease);
        Clock.Advance(TimeSpan.FromSeconds(6));
        var retry = await Webhooks.ClaimDueAsync(10, ClaimLease);
        await Webhooks.RecordAttemptAsync(new WebhookAttempt(id, true, 204, null, null));
        Clock.Advance(TimeSpan.FromHours(1));
        var afterDelivery = await Webhooks.ClaimDueAsync(10, ClaimLease);

        beforeRetry.ShouldBeEmpty();
        retry.Single().Delivery.Id.ShouldBe(id);
        retry.Single().Delivery.Attempts.ShouldBe(1);
        afterDelivery.ShouldBeEmpty();
        var logged = (await Webhooks.ListDeliveriesAsync(subscription.Id, null, 10)).Items.Single();
        logged.Status.ShouldBe(WebhookDeliveryStatus.Delivered);
        logged.Attempts.ShouldBe(2);
        logged.LastStatus.ShouldBe(204);
        logged.DeliveredAt.ShouldNotBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task RecordAttemptAsync_GivenUp_FailedAndNeverClaimedAgain()
    {
        var subscription = await SubscribeAsync("wh_all", "alice", WebhookEvents.All);
        await Store.Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "alice"), Alice);
        await Store.Bots.RecordMessageAsync("bot1", "hello", Alice);
        var id = (await Webhooks.ClaimDueAsync(10, ClaimLease)).Single().Delivery.Id;

        await Webhooks.RecordAttemptAsync(new WebhookAttempt(id, false, null, "refused: private", null));
        Clock.Advance(TimeSpan.FromDays(1));

        (await Webhooks.ClaimDueAsync(10, ClaimLease)).ShouldBeEmpty();
        var logged = (await Webhooks.ListDeliveriesAsync(subscription.Id, null, 10)).Items.Single();
        logged.Status.ShouldBe(WebhookDeliveryStatus.Failed);
        logged.LastError.ShouldBe("refused: private");
    }

    [Fact(Timeout = 60_000)]
    public async Task ClaimDueAsync_TwoNodesAtOnce_EachDeliveryClaimedByOneNode()
    {
        await SubscribeAsync("wh_all", "alice", WebhookEvents.All);
        await Store.Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "alice"), Alice);
        for (var i = 0; i < 40; i++)
        {
            Clock.Advance(TimeSpan.FromMilliseconds(1));
            await Store.Bots.RecordMessageAsync("bot1", $"m{i}", Alice);
        }

        await using var nodeB = await Provider.OpenSameStoreAsync(Store, Clock);
        var claims = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => (i % 2 == 0 ? Webhooks : nodeB.Webhooks!).ClaimDueAsync(7, ClaimLease)));

        var ids = claims.SelectMany(c => c).Select(d => d.Delivery.Id).ToList();
        ids.Count.ShouldBe(40);
        ids.Distinct().Count().ShouldBe(40);
    }

    [Fact(Timeout = 30_000)]
    public async Task Subscriptions_ListFindDeleteAndPaging_DeleteTakesItsDeliveries()
    {
        var a = await SubscribeAsync("wh_a", "alice", [WebhookEvents.MessageReceived]);
        await SubscribeAsync("wh_b", "bob", WebhookEvents.All);
        await Store.Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "alice"), Alice);
        for (var i = 0; i < 5; i++)
        {
            Clock.Advance(TimeSpan.FromSeconds(1));
            await Store.Bots.RecordMessageAsync("bot1", $"m{i}", Alice);
        }

        var first = await Webhooks.ListDeliveriesAsync(a.Id, null, 3);
        var second = await Webhooks.ListDeliveriesAsync(a.Id, first.NextCursor, 3);

        (await Webhooks.ListSubscriptionsAsync("alice")).Select(s => s.Id).ShouldBe(["wh_a"]);
        (await Webhooks.ListSubscriptionsAsync(null)).Select(s => s.Id).ShouldBe(["wh_a", "wh_b"]);
        (await Webhooks.FindSubscriptionAsync("wh_a"))!.EventTypes.ShouldBe([WebhookEvents.MessageReceived]);
        first.Items.Count.ShouldBe(3);
        first.NextCursor.ShouldNotBeNull();
        second.Items.Count.ShouldBe(2);
        second.NextCursor.ShouldBeNull();
        first.Items.Concat(second.Items).Select(d => d.CreatedAt).ShouldBeInOrder(SortDirection.Descending);
        (await Webhooks.DeleteSubscriptionAsync("wh_a")).ShouldBeTrue();
        (await Webhooks.DeleteSubscriptionAsync("wh_a")).ShouldBeFalse();
        (await Webhooks.FindSubscriptionAsync("wh_a")).ShouldBeNull();
        (await Webhooks.ListDeliveriesAsync(a.Id, null, 10)).Items.ShouldBeEmpty();
        (await Webhooks.ClaimDueAsync(100, ClaimLease)).ShouldBeEmpty();
    }

    [Fact(Timeout = 30_000)]
    public async Task SessionDeliveries_OfOneSessionAcrossTheOwnersSubscriptions_NewestFirst()
    {
        await SubscribeAsync("wh_a", "alice", WebhookEvents.All);
        await SubscribeAsync("wh_m", "alice", [WebhookEvents.MessageReceived]);
        await SubscribeAsync("wh_bob", "bob", WebhookEvents.All);
        await Store.Bots.StartOrReactivateAsync(new StartBotSession("bot1", Owner: "alice"), Alice);
        await Store.Bots.StartOrReactivateAsync(new StartBotSession("bot2", Owner: "alice"), Alice);
        Clock.Advance(TimeSpan.FromSeconds(1));
        await Store.Bots.SetQrAsync("bot1", "2@qr", Alice);
        Clock.Advance(TimeSpan.FromSeconds(1));
        await Store.Bots.RecordMessageAsync("bot2", "to the other bot", Alice);
        Clock.Advance(TimeSpan.FromSeconds(1));
        await Store.Bots.RecordMessageAsync("bot1", "hello", Alice);

        var bot1 = await Webhooks.ListSessionDeliveriesAsync("alice", SessionKind.Bot, "bot1", 10);
        var newest = await Webhooks.ListSessionDeliveriesAsync("alice", SessionKind.Bot, "bot1", 2);

        bot1.Select(d => (d.EventType, d.SubscriptionId)).OrderBy(x => x.SubscriptionId, StringComparer.Ordinal).ThenBy(x => x.EventType, StringComparer.Ordinal)
            .ShouldBe([(WebhookEvents.MessageReceived, "wh_a"), (WebhookEvents.QrCodeUpdated, "wh_a"), (WebhookEvents.MessageReceived, "wh_m")]);
        bot1.ShouldAllBe(d => d.SessionId == "bot1" && d.SessionKind == "bot");
        bot1.Select(d => d.CreatedAt).ShouldBeInOrder(SortDirection.Descending);
        newest.Select(d => d.EventType).ShouldBe([WebhookEvents.MessageReceived, WebhookEvents.MessageReceived]);
        (await Webhooks.ListSessionDeliveriesAsync("bob", SessionKind.Bot, "bot1", 10)).ShouldBeEmpty("bob's subscription never hears alice's bot");
        (await Webhooks.ListSessionDeliveriesAsync("alice", SessionKind.Generation, "bot1", 10)).ShouldBeEmpty();
    }

    private Task<WebhookSubscription> SubscribeAsync(string id, string owner, IReadOnlyList<string> types) =>
        Webhooks.CreateSubscriptionAsync(new NewWebhookSubscription(id, owner, "https://example.test/hook", types, [1, 2, 3]));
}
