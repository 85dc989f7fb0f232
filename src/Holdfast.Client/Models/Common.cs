namespace Holdfast.Client.Models;

/// <summary>A page of a list; pass <see cref="NextCursor"/> back as <c>cursor</c> for the next one (null: no more).</summary>
public sealed record ItemPage<T>(IReadOnlyList<T> Items, string? NextCursor);

/// <summary>One audit-trail entry: who did what to a session, from which state to which, when and why.</summary>
public sealed record AuditEntry(
    string SessionKind,
    string SessionId,
    long Seq,
    DateTimeOffset At,
    string Actor,
    string Action,
    string? FromState,
    string? ToState,
    string? Detail);

/// <summary>A page of the audit trail, newest first; pass <see cref="NextBefore"/> back as <c>before</c>.</summary>
public sealed record AuditPage(IReadOnlyList<AuditEntry> Items, long? NextBefore);

/// <summary>An RFC 9457 problem (<c>application/problem+json</c>) as every error of the API is reported.</summary>
public sealed record Problem(
    string? Type,
    string? Title,
    int Status,
    string? Detail,
    IReadOnlyDictionary<string, string[]>? Errors = null);

/// <summary>An API key as listed (never with its secret).</summary>
public sealed record ApiKeyInfo(
    string Id,
    string User,
    bool Admin,
    DateTimeOffset CreatedAt,
    DateTimeOffset? RevokedAt,
    DateTimeOffset? LastUsedAt);

/// <summary>Body of <c>POST /api/v1/keys</c> (admins only).</summary>
public sealed record CreateApiKeyRequest(string? User, bool Admin = false);

/// <summary>A newly created key: <see cref="Key"/> is the secret, shown this once and never stored.</summary>
public sealed record CreatedApiKey(string Id, string User, bool Admin, string Key);
