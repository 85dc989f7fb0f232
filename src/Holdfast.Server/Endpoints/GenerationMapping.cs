using Holdfast.Generation;
using Wire = Holdfast.Client.Models;

namespace Holdfast.Server.Endpoints;

/// <summary>Core generation types ↔ wire DTOs.</summary>
internal static class GenerationMapping
{
    public static Wire.Generation ToWire(GenerationSession s) => new(
        s.Id,
        s.Owner,
        s.Model,
        s.Backend,
        ToWire(s.Status),
        s.DesiredState switch
        {
            GenerationDesiredState.Running => "running",
            GenerationDesiredState.Paused => "paused",
            GenerationDesiredState.Cancelled => "cancelled",
            _ => null,
        },
        s.PauseReason,
        s.Error,
        s.FinishReason,
        new Wire.GenerationUsage(s.Usage.InputTokens ?? 0, s.Usage.OutputTokens),
        s.PreviousSessionId,
        s.ForkedFrom,
        s.ForkedAtSeq,
        s.Input.Select(m => new Wire.InputMessage(m.Role, m.Content)).ToList(),
        new Wire.GenerationParameters(s.Parameters.Temperature, s.Parameters.TopP, s.Parameters.MaxTokens, s.Parameters.Seed, s.Parameters.Stop),
        s.Output,
        s.LastSeq,
        s.Version,
        s.CreatedAt,
        s.UpdatedAt,
        s.CompletedAt,
        s.Metadata);

    public static Wire.GenerationStatus ToWire(GenerationStatus status) => status switch
    {
        GenerationStatus.Queued => Wire.GenerationStatus.Queued,
        GenerationStatus.Running => Wire.GenerationStatus.Running,
        GenerationStatus.Paused => Wire.GenerationStatus.Paused,
        GenerationStatus.Completed => Wire.GenerationStatus.Completed,
        GenerationStatus.Cancelled => Wire.GenerationStatus.Cancelled,
        GenerationStatus.Failed => Wire.GenerationStatus.Failed,
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, "Unknown generation status."),
    };

    public static GenerationStatus? ParseStatus(string? status) => status switch
    {
        null or "" => null,
        "queued" => GenerationStatus.Queued,
        "running" => GenerationStatus.Running,
        "paused" => GenerationStatus.Paused,
        "completed" => GenerationStatus.Completed,
        "cancelled" => GenerationStatus.Cancelled,
        "failed" => GenerationStatus.Failed,
        _ => throw new Sessions.InvalidSessionInputException("status", "'status' must be one of queued, running, paused, completed, cancelled, failed."),
    };

    public static Wire.LogEvent ToWire(GenerationLogEvent e) => e.Type == GenerationLogEventType.Chunk
        ? new Wire.LogEvent(e.Seq, "chunk", Text: e.Text)
        : new Wire.LogEvent(
            e.Seq,
            "status",
            Status: e.StatusChange is { } change ? ToWire(change.Status) : null,
            Reason: e.StatusChange?.Reason ?? e.StatusChange?.FinishReason,
            Error: e.StatusChange?.Error);

    public static GenerationParameters ToCore(Wire.GenerationParameters? p) => p is null
        ? GenerationParameters.Default
        : new GenerationParameters { Temperature = p.Temperature, TopP = p.TopP, MaxTokens = p.MaxTokens, Seed = p.Seed, Stop = p.Stop };

    /// <summary>True when the session will not produce more events without a new request (follow ends).</summary>
    public static bool IsSettled(GenerationSession s) => s.Status is GenerationStatus.Completed or GenerationStatus.Cancelled or GenerationStatus.Failed;
}
