namespace Holdfast.Client.Models;

/// <summary>Status of a bot session, exactly as in the <c>bot_sessions</c> table.</summary>
public enum BotStatus
{
    Active,
    Inactive,
}

/// <summary>A bot session (a row of <c>bot_sessions</c>) as the API returns it.</summary>
public sealed record Bot(
    string SessionId,
    DateTimeOffset CreatedAt,
    string? LastMessage,
    BotStatus Status,
    string? QrData,
    DateTimeOffset UpdatedAt,
    string? BotType,
    string? Owner,
    string? ConnectionDetail,
    long Version);

/// <summary>Body of <c>POST /api/v1/bots</c>; <see cref="BotType"/> is <c>web</c> (default) or <c>bridge</c>.</summary>
public sealed record StartBotRequest(string? SessionId, string? BotType = null);

/// <summary>Bridge: body of <c>POST /api/v1/bots/{id}/qr</c>.</summary>
public sealed record BotQrUpdate(string? QrData);

/// <summary>Bridge: body of <c>POST /api/v1/bots/{id}/messages</c>.</summary>
public sealed record BotMessage(string? Text);

/// <summary>Bridge: body of <c>POST /api/v1/bots/{id}/connection</c>.</summary>
public sealed record BotConnectionUpdate(string? State, string? Detail = null);

/// <summary>Admins: body of <c>POST /api/v1/bots/{id}/owner</c>, the user the session is given to.</summary>
public sealed record BotOwnerAssignment(string? Owner);
