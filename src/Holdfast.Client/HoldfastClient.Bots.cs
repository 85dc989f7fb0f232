using Holdfast.Client.Models;

namespace Holdfast.Client;

/// <summary>Formats of a bot's QR code.</summary>
public enum BotQrFormat
{
    /// <summary>image/png.</summary>
    Png,

    /// <summary>image/svg+xml.</summary>
    Svg,

    /// <summary>text/plain, drawn with block characters for a terminal.</summary>
    Text,
}

public sealed partial class HoldfastClient
{
    /// <summary>
    /// Starts a bot session, or reactivates the existing one with that id (its stored login state lets it reconnect
    /// without a new scan). Completes once the session is stored as <c>active</c>; the connector connects in the
    /// background and reports a QR code when it needs one.
    /// </summary>
    /// <param name="sessionId">The bot's id (letters, digits and - _ . : @).</param>
    /// <param name="botType"><c>web</c> (default) or <c>bridge</c>.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<Bot> StartBotAsync(string sessionId, string? botType = null, CancellationToken cancellationToken = default) =>
        SendAsync<Bot>(HttpMethod.Post, "api/v1/bots", new StartBotRequest(sessionId, botType), cancellationToken: cancellationToken);

    /// <summary>Lists bot sessions visible to the caller. Completes with one page.</summary>
    /// <param name="status">Only sessions in this status; null for all.</param>
    /// <param name="limit">Page size (server default when null).</param>
    /// <param name="cursor">The <see cref="ItemPage{T}.NextCursor"/> of the previous page; null for the first.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<ItemPage<Bot>> ListBotsAsync(BotStatus? status = null, int? limit = null, string? cursor = null, CancellationToken cancellationToken = default) =>
        SendAsync<ItemPage<Bot>>(
            HttpMethod.Get,
            Query("api/v1/bots", ("status", status?.ToString().ToLowerInvariant()), ("limit", limit), ("cursor", cursor)),
            cancellationToken: cancellationToken);

    /// <summary>Gets one bot session. Throws <see cref="HoldfastApiException"/> (404) when it is not visible.</summary>
    /// <param name="sessionId">The bot's id.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<Bot> GetBotAsync(string sessionId, CancellationToken cancellationToken = default) =>
        SendAsync<Bot>(HttpMethod.Get, $"api/v1/bots/{Escape(sessionId)}", cancellationToken: cancellationToken);

    /// <summary>
    /// Downloads the bot's current QR code in <paramref name="format"/>. Completes with the bytes; throws
    /// <see cref="HoldfastApiException"/> (404) when the bot has no QR code (already logged in, or ended).
    /// </summary>
    /// <param name="sessionId">The bot's id.</param>
    /// <param name="format">PNG, SVG or terminal text (UTF-8).</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public async Task<byte[]> GetBotQrAsync(string sessionId, BotQrFormat format = BotQrFormat.Png, CancellationToken cancellationToken = default)
    {
        using var request = CreateRequest(HttpMethod.Get, Query($"api/v1/bots/{Escape(sessionId)}/qr", ("format", format.ToString().ToLowerInvariant())));
        using var response = await SendRawAsync(request, null, cancellationToken);
        return await response.Content.ReadAsByteArrayAsync(cancellationToken);
    }

    /// <summary>Ends a bot session: completes once it is stored as <c>inactive</c> with its QR code cleared.</summary>
    /// <param name="sessionId">The bot's id.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<Bot> EndBotAsync(string sessionId, CancellationToken cancellationToken = default) =>
        SendAsync<Bot>(HttpMethod.Post, $"api/v1/bots/{Escape(sessionId)}/end", cancellationToken: cancellationToken);

    /// <summary>
    /// Admins: gives bot session <paramref name="sessionId"/> to user <paramref name="owner"/> (for example a session
    /// created through the library, which has no owner and which no user can claim by starting it). Completes once
    /// the change and its audit event (<c>bot.owner</c>) are stored; throws <see cref="HoldfastApiException"/> (403)
    /// for a caller that is not an admin and (404) for an unknown session.
    /// </summary>
    /// <param name="sessionId">The bot's id.</param>
    /// <param name="owner">The user who owns the session from now on.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<Bot> AssignBotOwnerAsync(string sessionId, string owner, CancellationToken cancellationToken = default) =>
        SendAsync<Bot>(HttpMethod.Post, $"api/v1/bots/{Escape(sessionId)}/owner", new BotOwnerAssignment(owner), cancellationToken: cancellationToken);

    /// <summary>Reads the bot's audit trail, newest first. Completes with one page.</summary>
    /// <param name="sessionId">The bot's id.</param>
    /// <param name="before">Only events with a smaller seq; null for the newest.</param>
    /// <param name="limit">Page size (server default when null).</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<AuditPage> GetBotEventsAsync(string sessionId, long? before = null, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<AuditPage>(HttpMethod.Get, Query($"api/v1/bots/{Escape(sessionId)}/events", ("before", before), ("limit", limit)), cancellationToken: cancellationToken);

    /// <summary>
    /// The newest webhook deliveries about this bot, across its owner's subscriptions, newest first: event, status,
    /// attempts and the last answer. Throws <see cref="HoldfastApiException"/> (404) when the bot is not visible.
    /// </summary>
    /// <param name="sessionId">The bot's id.</param>
    /// <param name="limit">At most this many (1–200; the server's default, 20, when null).</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public async Task<IReadOnlyList<WebhookDeliveryInfo>> GetBotWebhookDeliveriesAsync(string sessionId, int? limit = null, CancellationToken cancellationToken = default) =>
        (await SendAsync<ItemPage<WebhookDeliveryInfo>>(
            HttpMethod.Get, Query($"api/v1/bots/{Escape(sessionId)}/webhook-deliveries", ("limit", limit)), cancellationToken: cancellationToken)).Items;
}
