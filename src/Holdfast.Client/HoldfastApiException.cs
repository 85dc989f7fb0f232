using System.Net;

namespace Holdfast.Client;

/// <summary>
/// The server answered with an error (<c>application/problem+json</c>): <see cref="Status"/> is the HTTP status,
/// <see cref="Title"/> a short summary and <see cref="Detail"/> a sentence written for a person. The message is the
/// detail when the server gave one, else the title.
/// </summary>
public sealed class HoldfastApiException : Exception
{
    /// <summary>Creates the exception from the parts of a problem document.</summary>
    public HoldfastApiException(HttpStatusCode status, string title, string? detail = null, string? type = null, IReadOnlyDictionary<string, string[]>? errors = null)
        : base(string.IsNullOrWhiteSpace(detail) ? title : detail)
    {
        Status = status;
        Title = title;
        Detail = detail;
        Type = type;
        Errors = errors ?? new Dictionary<string, string[]>(StringComparer.Ordinal);
    }

    /// <summary>The HTTP status code of the answer.</summary>
    public HttpStatusCode Status { get; }

    /// <summary>The problem's short title (e.g. "Conflict").</summary>
    public string Title { get; }

    /// <summary>The problem's explanation for a person, when the server gave one.</summary>
    public string? Detail { get; }

    /// <summary>The problem type URI, when the server gave one.</summary>
    public string? Type { get; }

    /// <summary>Validation errors by field name (empty when none).</summary>
    public IReadOnlyDictionary<string, string[]> Errors { get; }

    /// <summary>True for 404: the session does not exist or belongs to someone else.</summary>
    public bool IsNotFound => Status == HttpStatusCode.NotFound;

    /// <summary>True for 409: the request does not fit the session's current state.</summary>
    public bool IsConflict => Status == HttpStatusCode.Conflict;
}
