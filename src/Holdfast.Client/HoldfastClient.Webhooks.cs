using Holdfast.Client.Models;

namespace Holdfast.Client;

public sealed partial class HoldfastClient
{
    /// <summary>
    /// Subscribes the caller's sessions' events (<paramref name="eventTypes"/>; null: all) to <paramref name="url"/>.
    /// Completes once stored; the returned <see cref="CreatedWebhook.Secret"/> (<c>whsec_…</c>, generated unless
    /// <paramref name="secret"/> is given) is the only time it is shown. Loopback and private targets are refused (400)
    /// unless the server allows them (<c>Webhooks:AllowPrivateTargets</c>).
    /// </summary>
    /// <param name="url">Where the events are posted.</param>
    /// <param name="eventTypes">Event types such as <c>message.received</c>; null or empty for every type.</param>
    /// <param name="secret">A <c>whsec_</c> secret of your own, or null to get one.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<CreatedWebhook> CreateWebhookAsync(string url, IReadOnlyList<string>? eventTypes = null, string? secret = null, CancellationToken cancellationToken = default) =>
        SendAsync<CreatedWebhook>(HttpMethod.Post, "api/v1/webhooks", new CreateWebhookRequest(url, eventTypes, secret), cancellationToken: cancellationToken);

    /// <summary>The caller's webhook subscriptions (admins: all), without secrets. Completes with all of them.</summary>
    /// <param name="cancellationToken">Abandons the request.</param>
    public async Task<IReadOnlyList<Webhook>> ListWebhooksAsync(CancellationToken cancellationToken = default) =>
        (await SendAsync<ItemPage<Webhook>>(HttpMethod.Get, "api/v1/webhooks", cancellationToken: cancellationToken)).Items;

    /// <summary>Deletes a subscription and its pending deliveries. Completes once deleted; 404 when it is not the caller's.</summary>
    /// <param name="id">The subscription id (<c>wh_…</c>).</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task DeleteWebhookAsync(string id, CancellationToken cancellationToken = default) =>
        SendNoContentAsync(HttpMethod.Delete, $"api/v1/webhooks/{Escape(id)}", cancellationToken);

    /// <summary>One page of a subscription's delivery log, newest first; pass <see cref="ItemPage{T}.NextCursor"/> as <paramref name="before"/>.</summary>
    /// <param name="id">The subscription id.</param>
    /// <param name="before">A cursor from the previous page, or null.</param>
    /// <param name="limit">At most this many (1–1000).</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<ItemPage<WebhookDeliveryInfo>> ListWebhookDeliveriesAsync(string id, string? before = null, int limit = 100, CancellationToken cancellationToken = default) =>
        SendAsync<ItemPage<WebhookDeliveryInfo>>(
            HttpMethod.Get,
            $"api/v1/webhooks/{Escape(id)}/deliveries?limit={limit}{(before is null ? string.Empty : "&before=" + Escape(before))}",
            cancellationToken: cancellationToken);
}
