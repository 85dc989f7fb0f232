using System.Security.Cryptography;
using System.Text;
using Holdfast.Bots;
using Holdfast.Sessions;
using Microsoft.Extensions.Options;

namespace Holdfast.Webhooks;

/// <summary>A subscription just created, with its secret (shown this once; stored encrypted).</summary>
public sealed record CreatedWebhook(WebhookSubscription Subscription, string Secret);

/// <summary>
/// Manages webhook subscriptions for their owners: create (URL checked, secret generated or given, stored encrypted),
/// list, delete, and the delivery log. Another owner's subscription is not found, exactly like a missing one.
/// </summary>
public sealed class WebhookSubscriptions(IWebhookStore store, BotAuthStateProtector protector, IOptions<WebhookOptions> options)
{
    /// <summary>Subscriptions an owner may have.</summary>
    public const int MaxPerOwner = 50;

    /// <summary>
    /// Creates a subscription of <paramref name="owner"/> to <paramref name="eventTypes"/> (null or empty: every type)
    /// at <paramref name="url"/>. Unless <see cref="WebhookOptions.AllowPrivateTargets"/> is on, an IP address or
    /// <c>localhost</c> name that is loopback or private is refused (400) before anything is stored; a host name is not
    /// looked up here (no DNS traffic from an API call) but at every delivery, before the connection. Completes once committed.
    /// </summary>
    public async Task<CreatedWebhook> CreateAsync(string owner, string? url, IReadOnlyList<string>? eventTypes, string? secret, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(owner, "owner");
        var uri = WebhookTargets.ParseUrl(url);
        var types = eventTypes is null || eventTypes.Count == 0 ? WebhookEvents.All : eventTypes.Distinct(StringComparer.Ordinal).ToList();
        if (types.FirstOrDefault(t => !WebhookEvents.IsKnown(t)) is { } unknown)
        {
            throw new InvalidSessionInputException("event_types", $"Unknown event type '{(unknown.Length > 40 ? unknown[..40] : unknown)}'; known: {string.Join(", ", WebhookEvents.All)}.");
        }

        if (secret is not null && !WebhookSigner.IsValidSecret(secret))
        {
            throw new InvalidSessionInputException("secret", "'secret' must be whsec_ followed by base64 of 24 to 64 random bytes (leave it out to get one).");
        }

        if (!options.Value.AllowPrivateTargets && WebhookTargets.IsPrivateWithoutLookup(uri) is { } refused)
        {
            throw new InvalidSessionInputException("url", refused);
        }

        if ((await store.ListSubscriptionsAsync(owner, cancellationToken)).Count >= MaxPerOwner)
        {
            throw new InvalidSessionInputException("url", $"An owner has at most {MaxPerOwner} webhook subscriptions; delete one first.");
        }

        secret ??= WebhookSigner.NewSecret();
        var id = "wh_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var created = await store.CreateSubscriptionAsync(
            new NewWebhookSubscription(id, owner, uri.AbsoluteUri, types, protector.Protect(SecretContext(id), Encoding.UTF8.GetBytes(secret))),
            cancellationToken);
        return new CreatedWebhook(created, secret);
    }

    /// <summary>Subscriptions of <paramref name="owner"/> (null: everyone's, for admins).</summary>
    public Task<IReadOnlyList<WebhookSubscription>> ListAsync(string? owner, CancellationToken cancellationToken = default) =>
        store.ListSubscriptionsAsync(owner, cancellationToken);

    /// <summary>The subscription when <paramref name="owner"/> (null: an admin) may see it; else <see cref="WebhookNotFoundException"/>.</summary>
    public async Task<WebhookSubscription> GetAsync(string id, string? owner, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(id);
        var found = await store.FindSubscriptionAsync(id, cancellationToken);
        return found is not null && (owner is null || string.Equals(found.Owner, owner, StringComparison.Ordinal))
            ? found
            : throw new WebhookNotFoundException(id);
    }

    /// <summary>Deletes the subscription and its deliveries. Throws <see cref="WebhookNotFoundException"/> when it is not the caller's.</summary>
    public async Task DeleteAsync(string id, string? owner, CancellationToken cancellationToken = default)
    {
        await GetAsync(id, owner, cancellationToken);
        if (!await store.DeleteSubscriptionAsync(id, cancellationToken))
        {
            throw new WebhookNotFoundException(id);
        }
    }

    /// <summary>The delivery log of one subscription, newest first.</summary>
    public async Task<WebhookDeliveryPage> DeliveriesAsync(string id, string? owner, string? before, int limit, CancellationToken cancellationToken = default)
    {
        await GetAsync(id, owner, cancellationToken);
        return await store.ListDeliveriesAsync(id, before, Math.Clamp(limit, 1, 1000), cancellationToken);
    }

    /// <summary>
    /// The newest deliveries about one session (its events go only to subscriptions of its owner,
    /// <paramref name="sessionOwner"/>; none when it has no owner), newest first. The caller has checked that it may see the session.
    /// </summary>
    public async Task<IReadOnlyList<WebhookDelivery>> SessionDeliveriesAsync(string? sessionOwner, SessionKind kind, string sessionId, int limit, CancellationToken cancellationToken = default) =>
        sessionOwner is null ? [] : await store.ListSessionDeliveriesAsync(sessionOwner, kind, sessionId, Math.Clamp(limit, 1, 1000), cancellationToken);

    /// <summary>The plaintext secret of a claimed delivery's subscription.</summary>
    internal string UnprotectSecret(string subscriptionId, byte[] protectedSecret) =>
        Encoding.UTF8.GetString(protector.Unprotect(SecretContext(subscriptionId), protectedSecret));

    private static string SecretContext(string id) => "webhook:" + id;
}

/// <summary>No such webhook subscription (or another owner's).</summary>
public sealed class WebhookNotFoundException(string id) : Exception($"Webhook subscription '{id}' was not found.")
{
    public string SubscriptionId { get; } = id;
}
