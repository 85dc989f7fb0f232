namespace Holdfast.Client.Models;

/// <summary>Body of <c>POST /api/v1/webhooks</c>: where to send which events (none listed: all), and optionally the <c>whsec_</c> secret to sign with.</summary>
public sealed record CreateWebhookRequest(string? Url, IReadOnlyList<string>? EventTypes = null, string? Secret = null);

/// <summary>A webhook subscription as listed (never with its secret).</summary>
public sealed record Webhook(string Id, string Owner, string Url, IReadOnlyList<string> EventTypes, DateTimeOffset CreatedAt);

/// <summary>A newly created subscription: <see cref="Secret"/> (<c>whsec_…</c>) verifies its signatures; shown this once.</summary>
public sealed record CreatedWebhook(string Id, string Owner, string Url, IReadOnlyList<string> EventTypes, DateTimeOffset CreatedAt, string Secret);

/// <summary>
/// One event for one subscription: <see cref="Id"/> is the <c>webhook-id</c> header (the same on every attempt);
/// <see cref="Status"/> is <c>pending</c>, <c>delivered</c> or <c>failed</c> (given up).
/// </summary>
public sealed record WebhookDeliveryInfo(
    string Id,
    string SubscriptionId,
    string EventType,
    string SessionKind,
    string SessionId,
    DateTimeOffset CreatedAt,
    string Status,
    int Attempts,
    DateTimeOffset? NextAttemptAt,
    DateTimeOffset? LastAttemptAt,
    int? LastStatus,
    string? LastError,
    DateTimeOffset? DeliveredAt);
