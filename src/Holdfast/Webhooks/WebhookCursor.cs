using System.Globalization;
using Holdfast.Sessions;

namespace Holdfast.Webhooks;

/// <summary>The bot connection state as an event carries it.</summary>
public sealed record WebhookConnection(
    [property: System.Text.Json.Serialization.JsonPropertyName("state")] string State,
    [property: System.Text.Json.Serialization.JsonPropertyName("reason")] string? Reason,
    [property: System.Text.Json.Serialization.JsonPropertyName("code")] int? Code);

/// <summary>Delivery log paging (newest first, by created time then id) and stored status names; shared by the stores.</summary>
public static class WebhookCursor
{
    /// <summary>The (created_at, id) a <c>before</c> cursor stands for; (null, null) without one.</summary>
    public static (DateTimeOffset? At, string? Id) Parse(string? cursor)
    {
        if (string.IsNullOrEmpty(cursor))
        {
            return (null, null);
        }

        var bar = cursor.IndexOf('|', StringComparison.Ordinal);
        if (bar <= 0 || !long.TryParse(cursor.AsSpan(0, bar), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) || ticks > DateTimeOffset.MaxValue.UtcTicks)
        {
            throw new InvalidSessionInputException("before", "'before' must be a cursor from a previous page (next_cursor).");
        }

        return (new DateTimeOffset(ticks, TimeSpan.Zero), cursor[(bar + 1)..]);
    }

    /// <summary>The page of the first <paramref name="limit"/> items (read <paramref name="limit"/> + 1 to know if there is more).</summary>
    public static WebhookDeliveryPage Page(List<WebhookDelivery> items, int limit)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count <= limit)
        {
            return new WebhookDeliveryPage(items, null);
        }

        items.RemoveRange(limit, items.Count - limit);
        var last = items[^1];
        return new WebhookDeliveryPage(items, string.Create(CultureInfo.InvariantCulture, $"{last.CreatedAt.UtcTicks}|{last.Id}"));
    }

    /// <summary>A stored status name as the enum.</summary>
    public static WebhookDeliveryStatus ParseStatus(string status) => status switch
    {
        "pending" => WebhookDeliveryStatus.Pending,
        "delivered" => WebhookDeliveryStatus.Delivered,
        "failed" => WebhookDeliveryStatus.Failed,
        _ => throw new StoreUnavailableException($"Unknown webhook delivery status '{status}' in the store."),
    };

    /// <summary>The stored/wire name of a status.</summary>
    public static string ToWire(this WebhookDeliveryStatus status) => status switch
    {
        WebhookDeliveryStatus.Pending => "pending",
        WebhookDeliveryStatus.Delivered => "delivered",
        _ => "failed",
    };
}
