using Holdfast.Generation;

namespace Holdfast.Audit;

/// <summary>
/// The audit trail's vocabulary (<c>session_events.action</c>), in one place. Values are stored, so they never change:
/// generation actions are the command's verb (<c>pause</c>, <c>claim</c>…) or <c>create</c>/<c>fork</c>/<c>delete</c>/
/// <c>compact_log</c>; bot actions are <c>bot.</c> plus what happened.
/// </summary>
public static class AuditActions
{
    public const string Create = "create";
    public const string Fork = "fork";
    public const string Delete = "delete";
    public const string CompactLog = "compact_log";

    public const string BotCreated = "bot.created";
    public const string BotReactivated = "bot.reactivated";
    public const string BotQr = "bot.qr";
    public const string BotMessage = "bot.message";
    public const string BotConnection = "bot.connection";
    public const string BotEnded = "bot.ended";
    public const string BotAuthState = "bot.auth_state";
    public const string BotOwner = "bot.owner";

    /// <summary>The action recorded for a generation command: its verb (<c>pause</c>, <c>resume</c>, <c>cancel</c>, <c>claim</c>, <c>complete</c>, <c>stop</c>, <c>fail</c>, <c>interrupt</c>).</summary>
    public static string For(GenerationCommandKind kind) => kind switch
    {
        GenerationCommandKind.Pause => "pause",
        GenerationCommandKind.Resume => "resume",
        GenerationCommandKind.Cancel => "cancel",
        GenerationCommandKind.Claim => "claim",
        GenerationCommandKind.Complete => "complete",
        GenerationCommandKind.Stop => "stop",
        GenerationCommandKind.Fail => "fail",
        GenerationCommandKind.Interrupt => "interrupt",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown command."),
    };

    /// <summary>
    /// The event's detail column: what changed, and the actor's reason when one was given (once when they are the same).
    /// </summary>
    public static string? CombineDetail(string? detail, string? reason) =>
        (detail, reason) switch
        {
            (null, _) => reason,
            (_, null) => detail,
            _ when string.Equals(detail, reason, StringComparison.Ordinal) => reason,
            _ => $"{reason} ({detail})",
        };
}
