using System.Globalization;
using Holdfast.Client.Models;

namespace Holdfast.Client;

public sealed partial class HoldfastClient
{
    /// <summary>
    /// Creates a generation session. Completes once the session is durably stored (status <c>queued</c> or already
    /// <c>running</c>); the text is produced in the background — follow it with <see cref="FollowAsync"/>. With an
    /// <paramref name="idempotencyKey"/>, repeating the call returns the session the first call created instead of a new one.
    /// </summary>
    /// <param name="request">Model, input and parameters.</param>
    /// <param name="idempotencyKey">Caller-chosen key that makes retries safe; null for none.</param>
    /// <param name="cancellationToken">Abandons the request (the session may still have been created).</param>
    public Task<Generation> CreateGenerationAsync(CreateGenerationRequest request, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var headers = idempotencyKey is null ? null : new Dictionary<string, string>(StringComparer.Ordinal) { ["Idempotency-Key"] = idempotencyKey };
        return SendAsync<Generation>(HttpMethod.Post, "api/v1/generations", request, headers, cancellationToken: cancellationToken);
    }

    /// <summary>Lists generation sessions visible to the caller, newest first. Completes with one page.</summary>
    /// <param name="status">Only sessions in this status; null for all.</param>
    /// <param name="limit">Page size (server default when null).</param>
    /// <param name="cursor">The <see cref="ItemPage{T}.NextCursor"/> of the previous page; null for the first.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<ItemPage<Generation>> ListGenerationsAsync(GenerationStatus? status = null, int? limit = null, string? cursor = null, CancellationToken cancellationToken = default) =>
        SendAsync<ItemPage<Generation>>(
            HttpMethod.Get,
            Query("api/v1/generations", ("status", status?.ToString().ToLowerInvariant()), ("limit", limit), ("cursor", cursor)),
            cancellationToken: cancellationToken);

    /// <summary>Gets one generation, including its output so far. Throws <see cref="HoldfastApiException"/> (404) when it is not visible.</summary>
    /// <param name="generationId">The session id.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<Generation> GetGenerationAsync(string generationId, CancellationToken cancellationToken = default) =>
        SendAsync<Generation>(HttpMethod.Get, $"api/v1/generations/{Escape(generationId)}", cancellationToken: cancellationToken);

    /// <summary>
    /// Asks the session to pause. Completes once the request is durably recorded (it survives a crash right after); with
    /// <paramref name="wait"/>, only once the runner actually paused (or the wait elapsed — check
    /// <see cref="Generation.Status"/>). Pausing a paused session succeeds and changes nothing; pausing a finished one
    /// throws <see cref="HoldfastApiException"/> (409).
    /// </summary>
    /// <param name="generationId">The session id.</param>
    /// <param name="reason">Why, for the audit trail.</param>
    /// <param name="wait">How long the server may wait for the runner to reach the state; null to return at once.</param>
    /// <param name="expectedVersion">Optimistic concurrency: fail with 409 unless the session is at this version.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<Generation> PauseGenerationAsync(string generationId, string? reason = null, TimeSpan? wait = null, long? expectedVersion = null, CancellationToken cancellationToken = default) =>
        ControlAsync(generationId, "pause", reason, wait, expectedVersion, cancellationToken);

    /// <summary>
    /// Asks a paused (or failed) session to continue where it stopped. Completes once the request is durably recorded;
    /// with <paramref name="wait"/>, once the runner is running again (or the wait elapsed). Resuming a completed or
    /// cancelled session throws <see cref="HoldfastApiException"/> (409).
    /// </summary>
    /// <param name="generationId">The session id.</param>
    /// <param name="reason">Why, for the audit trail.</param>
    /// <param name="wait">How long the server may wait for the runner to reach the state; null to return at once.</param>
    /// <param name="expectedVersion">Optimistic concurrency: fail with 409 unless the session is at this version.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<Generation> ResumeGenerationAsync(string generationId, string? reason = null, TimeSpan? wait = null, long? expectedVersion = null, CancellationToken cancellationToken = default) =>
        ControlAsync(generationId, "resume", reason, wait, expectedVersion, cancellationToken);

    /// <summary>
    /// Asks the session to stop for good, keeping its partial output. Completes once the request is durably recorded; with
    /// <paramref name="wait"/>, once the session is <c>cancelled</c> (or the wait elapsed). Cancelling a completed session
    /// throws <see cref="HoldfastApiException"/> (409).
    /// </summary>
    /// <param name="generationId">The session id.</param>
    /// <param name="reason">Why, for the audit trail.</param>
    /// <param name="wait">How long the server may wait for the runner to reach the state; null to return at once.</param>
    /// <param name="expectedVersion">Optimistic concurrency: fail with 409 unless the session is at this version.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<Generation> CancelGenerationAsync(string generationId, string? reason = null, TimeSpan? wait = null, long? expectedVersion = null, CancellationToken cancellationToken = default) =>
        ControlAsync(generationId, "cancel", reason, wait, expectedVersion, cancellationToken);

    /// <summary>
    /// Forks a session: a new session with the same input and the output up to <paramref name="atSeq"/> (all of it when
    /// null), which then continues on its own. Completes once the new session is stored.
    /// </summary>
    /// <param name="generationId">The session to fork.</param>
    /// <param name="atSeq">Keep the output up to this seq; null for all of it.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<Generation> ForkGenerationAsync(string generationId, long? atSeq = null, CancellationToken cancellationToken = default) =>
        SendAsync<Generation>(HttpMethod.Post, $"api/v1/generations/{Escape(generationId)}/fork", new ForkRequest(atSeq), cancellationToken: cancellationToken);

    /// <summary>Deletes a session and its output. Completes once it is gone (the audit trail keeps its history).</summary>
    /// <param name="generationId">The session id.</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task DeleteGenerationAsync(string generationId, CancellationToken cancellationToken = default) =>
        SendNoContentAsync(HttpMethod.Delete, $"api/v1/generations/{Escape(generationId)}", cancellationToken);

    /// <summary>Reads the session's audit trail, newest first. Completes with one page; pass <see cref="AuditPage.NextBefore"/> as <paramref name="before"/> for the next.</summary>
    /// <param name="generationId">The session id.</param>
    /// <param name="before">Only events with a smaller seq; null for the newest.</param>
    /// <param name="limit">Page size (server default when null).</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<AuditPage> GetGenerationEventsAsync(string generationId, long? before = null, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<AuditPage>(HttpMethod.Get, Query($"api/v1/generations/{Escape(generationId)}/events", ("before", before), ("limit", limit)), cancellationToken: cancellationToken);

    /// <summary>Reads the session's durable event log (chunks and status changes) after <paramref name="after"/>, in seq order. Completes with one page.</summary>
    /// <param name="generationId">The session id.</param>
    /// <param name="after">Only events with a larger seq.</param>
    /// <param name="limit">Page size (server default when null).</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<LogPage> GetGenerationLogAsync(string generationId, long after = 0, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<LogPage>(HttpMethod.Get, Query($"api/v1/generations/{Escape(generationId)}/log", ("after", after), ("limit", limit)), cancellationToken: cancellationToken);

    private Task<Generation> ControlAsync(string generationId, string action, string? reason, TimeSpan? wait, long? expectedVersion, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(generationId);
        var waitSeconds = wait is { } w ? Math.Max(0, (int)Math.Ceiling(w.TotalSeconds)) : (int?)null;
        var path = Query($"api/v1/generations/{Escape(generationId)}/{action}", ("wait", waitSeconds?.ToString(CultureInfo.InvariantCulture)));
        var body = reason is null && expectedVersion is null ? null : new ControlRequest(reason, expectedVersion);
        return SendAsync<Generation>(HttpMethod.Post, path, body, extraTimeout: wait, cancellationToken: cancellationToken);
    }
}
