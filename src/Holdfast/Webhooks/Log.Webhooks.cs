using Microsoft.Extensions.Logging;

namespace Holdfast;

/// <summary>Webhook log messages (event ids 4000–4999). Never logs a secret or a payload.</summary>
internal static partial class Log
{
    [LoggerMessage(4001, LogLevel.Debug, "Webhook {DeliveryId} ({EventType}) delivered: HTTP {Status}")]
    public static partial void WebhookDelivered(ILogger logger, string deliveryId, string eventType, int status);

    [LoggerMessage(4002, LogLevel.Warning, "Webhook {DeliveryId} ({EventType}) attempt {Attempt} failed: {Error}")]
    public static partial void WebhookAttemptFailed(ILogger logger, string deliveryId, string eventType, int attempt, string error);

    [LoggerMessage(4003, LogLevel.Warning, "Webhook {DeliveryId} refused: {Reason}")]
    public static partial void WebhookRefused(ILogger logger, string deliveryId, string reason);

    [LoggerMessage(4004, LogLevel.Error, "The webhook delivery loop failed; it goes on")]
    public static partial void WebhookLoopFailed(ILogger logger, Exception exception);
}
