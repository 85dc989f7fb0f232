using Holdfast.Sessions;

namespace Holdfast.Webhooks;

/// <summary>A webhook subscription: events of <see cref="Owner"/>'s sessions of the listed types go to <see cref="Url"/>.</summary>
public sealed record WebhookSubscription(string Id, string Owner, string Url, IReadOnlyList<string> EventTypes, DateTimeOffset CreatedAt);

/// <summary>A new subscription as the store keeps it: the secret already encrypted.</summary>
public sealed record NewWebhookSubscription(string Id, string Owner, string Url, IReadOnlyList<string> EventTypes, byte[] ProtectedSecret);

/// <summary>Where a delivery stands.</summary>
public enum WebhookDeliveryStatus
{
    /// <summary>Not delivered yet; due at <see cref="WebhookDelivery.NextAttemptAt"/>.</summary>
    Pending,

    /// <summary>The receiver answered 2xx.</summary>
    Delivered,

    /// <summary>Given up after <c>Webhooks:MaxAttempts</c> attempts (or refused target); kept in the log.</summary>
    Failed,
}

/// <summary>One event for one subscription (an outbox row): the delivery log entry. <see cref="Id"/> is the <c>webhook-id</c>.</summary>
public sealed record WebhookDelivery(
    string Id,
    string SubscriptionId,
    string EventType,
    string SessionKind,
    string SessionId,
    DateTimeOffset CreatedAt,
    WebhookDeliveryStatus Status,
    int Attempts,
    DateTimeOffset NextAttemptAt,
    DateTimeOffset? LastAttemptAt,
    int? LastStatus,
    string? LastError,
    DateTimeOffset? DeliveredAt);

/// <summary>A due delivery claimed for sending: the row, its body, and where and how to sign it.</summary>
public sealed record WebhookDispatch(WebhookDelivery Delivery, string Payload, string Url, byte[] ProtectedSecret);

/// <summary>What one attempt gave: delivered, or not (then due again at <see cref="RetryAt"/>, or given up when that is null).</summary>
public sealed record WebhookAttempt(string DeliveryId, bool Delivered, int? StatusCode, string? Error, DateTimeOffset? RetryAt);

/// <summary>A page of deliveries, newest first; pass <see cref="NextCursor"/> back as <c>before</c>.</summary>
public sealed record WebhookDeliveryPage(IReadOnlyList<WebhookDelivery> Items, string? NextCursor);

/// <summary>
/// Port: webhook subscriptions and the outbox. Events are not written through this port: every store writes them in the
/// transaction of the change (see <see cref="WebhookEvents.ForAudit"/>), one row per subscription of the session's owner
/// that lists the type, with a new id (<c>msg_</c> + 32 hex) that stays the row's for ever. Deliveries are claimed
/// under a short lease (the row's <c>next_attempt_at</c> moves to the lease end), so with several nodes a row is sent by
/// one node at a time, and a node that dies mid-delivery leaves it due again when the lease ends: at least once.
/// </summary>
public interface IWebhookStore
{
    /// <summary>Stores a subscription. Completes once committed.</summary>
    Task<WebhookSubscription> CreateSubscriptionAsync(NewWebhookSubscription subscription, CancellationToken cancellationToken = default);

    /// <summary>Subscriptions ordered by id, of <paramref name="owner"/> (null: everyone's). Completes when read.</summary>
    Task<IReadOnlyList<WebhookSubscription>> ListSubscriptionsAsync(string? owner, CancellationToken cancellationToken = default);

    /// <summary>The subscription, or null. Completes when read.</summary>
    Task<WebhookSubscription?> FindSubscriptionAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Deletes the subscription and its deliveries (pending ones are never sent). False when there was none. Completes once committed.</summary>
    Task<bool> DeleteSubscriptionAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Claims up to <paramref name="limit"/> pending deliveries due now (oldest due first), moving each one's due time
    /// to now + <paramref name="lease"/> so no other node sends it meanwhile. Completes once committed.
    /// </summary>
    Task<IReadOnlyList<WebhookDispatch>> ClaimDueAsync(int limit, TimeSpan lease, CancellationToken cancellationToken = default);

    /// <summary>Records an attempt: attempts + 1, last answer; delivered, due again at its retry time, or failed. Completes once committed.</summary>
    Task RecordAttemptAsync(WebhookAttempt attempt, CancellationToken cancellationToken = default);

    /// <summary>Deliveries of one subscription, newest first (<paramref name="before"/>: a cursor from a previous page). Completes when read.</summary>
    Task<WebhookDeliveryPage> ListDeliveriesAsync(string subscriptionId, string? before, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// The newest <paramref name="limit"/> deliveries about one session, across every subscription of
    /// <paramref name="owner"/> (a session's events go only to its owner's subscriptions), newest first. Completes when read.
    /// </summary>
    Task<IReadOnlyList<WebhookDelivery>> ListSessionDeliveriesAsync(string owner, SessionKind kind, string sessionId, int limit, CancellationToken cancellationToken = default);
}
