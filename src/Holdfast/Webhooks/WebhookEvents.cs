using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Holdfast.Audit;
using Holdfast.Sessions;

namespace Holdfast.Webhooks;

/// <summary>
/// The webhook event types and the one rule that says which change is which event. A store calls
/// <see cref="ForAudit"/> for every audit event it writes, inside the same transaction, and writes one outbox row per
/// subscription of the session's owner that asked for the type: so an event exists exactly when its change committed.
/// </summary>
public static class WebhookEvents
{
    public const string QrCodeUpdated = "qrcode.updated";
    public const string ConnectionUpdated = "connection.updated";
    public const string MessageReceived = "message.received";
    public const string SessionEnded = "session.ended";
    public const string GenerationStarted = "generation.started";
    public const string GenerationPaused = "generation.paused";
    public const string GenerationResumed = "generation.resumed";
    public const string GenerationCompleted = "generation.completed";
    public const string GenerationCancelled = "generation.cancelled";
    public const string GenerationFailed = "generation.failed";

    /// <summary>Every event type, in the order the docs list them.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        QrCodeUpdated, ConnectionUpdated, MessageReceived, SessionEnded,
        GenerationStarted, GenerationPaused, GenerationResumed, GenerationCompleted, GenerationCancelled, GenerationFailed,
    ];

    /// <summary>True for a known event type.</summary>
    public static bool IsKnown(string? type) => type is not null && All.Contains(type, StringComparer.Ordinal);

    /// <summary>
    /// The event an audit event is, or null when it is none. Bots: <c>bot.qr</c> → <c>qrcode.updated</c> (a new QR or
    /// the QR cleared), <c>bot.connection</c> → <c>connection.updated</c>, <c>bot.message</c> → <c>message.received</c>
    /// (only a message that became the last one: an older one writes no audit event), <c>bot.ended</c> →
    /// <c>session.ended</c>. Generations, from the status before and after (the first word of the audit states):
    /// becoming <c>running</c> → <c>generation.started</c> (every run: the first, after a resume, after recovery),
    /// <c>resume</c> that changed the status → <c>generation.resumed</c>, becoming <c>paused</c>/<c>completed</c>/
    /// <c>cancelled</c>/<c>failed</c> → <c>generation.paused</c>/…; a request that only records a desired state (pause of
    /// a running session) is not an event until the runner stops.
    /// </summary>
    public static string? ForAudit(SessionKind kind, string action, string? fromState, string? toState)
    {
        ArgumentNullException.ThrowIfNull(action);
        if (kind == SessionKind.Bot)
        {
            return action switch
            {
                AuditActions.BotQr => QrCodeUpdated,
                AuditActions.BotConnection => ConnectionUpdated,
                AuditActions.BotMessage => MessageReceived,
                AuditActions.BotEnded => SessionEnded,
                _ => null,
            };
        }

        var from = StatusOf(fromState);
        var to = StatusOf(toState);
        if (to is null || string.Equals(from, to, StringComparison.Ordinal))
        {
            return null;
        }

        if (string.Equals(action, "resume", StringComparison.Ordinal))
        {
            return GenerationResumed;
        }

        return to switch
        {
            "running" => GenerationStarted,
            "paused" => GenerationPaused,
            "completed" => GenerationCompleted,
            "cancelled" => GenerationCancelled,
            "failed" => GenerationFailed,
            _ => null,
        };
    }

    /// <summary>
    /// The event payload (the signed body): <c>{"type", "timestamp", "data": {...}}</c> as Standard Webhooks suggests;
    /// <c>data</c> holds the session kind and id, the audit action, states and detail, and <paramref name="session"/>'s fields.
    /// </summary>
    public static string Payload(string type, SessionKind kind, string sessionId, string action, string? fromState, string? toState, string? detail, DateTimeOffset at, IReadOnlyDictionary<string, object?> session)
    {
        ArgumentNullException.ThrowIfNull(session);
        var data = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["session_kind"] = kind.ToWire(),
            ["session_id"] = sessionId,
            ["action"] = action,
            ["from"] = fromState,
            ["to"] = toState,
            ["detail"] = detail,
        };
        foreach (var (key, value) in session)
        {
            data[key] = value;
        }

        var body = new WebhookPayload(type, at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture), data);
        return JsonSerializer.Serialize(body, JsonOptions);
    }

    /// <summary>A new delivery id (<c>webhook-id</c>): <c>msg_</c> + 32 hex digits.</summary>
    public static string NewMessageId() => "msg_" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    /// <summary>The subscriptions (id, stored event types) that want <paramref name="type"/>.</summary>
    public static IReadOnlyList<string> Matching(IEnumerable<(string Id, string EventTypes)> subscriptions, string type) =>
        subscriptions.Where(s => Split(s.EventTypes).Contains(type, StringComparer.Ordinal)).Select(s => s.Id).ToList();

    /// <summary>Event types as stored (comma separated).</summary>
    public static string Join(IEnumerable<string> types) => string.Join(',', types);

    /// <summary>Stored event types back as a list.</summary>
    public static IReadOnlyList<string> Split(string stored) =>
        (stored ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    private static string? StatusOf(string? state)
    {
        if (state is null)
        {
            return null;
        }

        var space = state.IndexOf(' ', StringComparison.Ordinal);
        return space < 0 ? state : state[..space];
    }
}

/// <summary>The signed body of a webhook.</summary>
internal sealed record WebhookPayload(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("timestamp")] string Timestamp,
    [property: JsonPropertyName("data")] Dictionary<string, object?> Data);

