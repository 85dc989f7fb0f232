using System.Diagnostics;
using Holdfast.Generation;
using Holdfast.Security;
using Holdfast.Server.Hosting;
using Holdfast.Server.Metrics;
using Holdfast.Server.Security;
using Holdfast.Server.Streaming;
using Holdfast.Sessions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using static Holdfast.Server.Endpoints.EndpointHelpers;
using Wire = Holdfast.Client.Models;

namespace Holdfast.Server.Endpoints;

/// <summary>
/// <c>/api/v1/generations</c>: start (with <c>Idempotency-Key</c>), list, get, pause/resume/cancel (with <c>?wait=</c>),
/// fork, delete, audit trail, durable log, and the live SSE stream. Another user's session answers 404 everywhere.
/// </summary>
internal static class GenerationEndpoints
{
    public const string IdempotencyHeader = "Idempotency-Key";

    public static RouteGroupBuilder MapGenerationApi(this IEndpointRouteBuilder api)
    {
        var generations = api.MapGroup("/generations").WithTags("Generations");
        generations.MapPost("/", CreateAsync).WithSummary("Starts a generation (201), or returns the one started with the same Idempotency-Key (200).");
        generations.MapGet("/", ListAsync).WithSummary("Generations of the caller (admins: all), newest first, paged.");
        generations.MapGet("/{id}", GetAsync).WithSummary("One generation with its output so far.");
        generations.MapPost("/{id}/pause", (string id, double? wait, Wire.ControlRequest? body, HttpContext context, CancellationToken ct) =>
            ControlAsync(id, ControlKind.Pause, wait, body, context, ct)).WithSummary("Pauses; with ?wait=SECONDS, answers once the runner stopped (or the wait elapsed).");
        generations.MapPost("/{id}/resume", (string id, double? wait, Wire.ControlRequest? body, HttpContext context, CancellationToken ct) =>
            ControlAsync(id, ControlKind.Resume, wait, body, context, ct)).WithSummary("Resumes a paused or failed generation; it continues its output.");
        generations.MapPost("/{id}/cancel", (string id, double? wait, Wire.ControlRequest? body, HttpContext context, CancellationToken ct) =>
            ControlAsync(id, ControlKind.Cancel, wait, body, context, ct)).WithSummary("Cancels for good, keeping the partial output.");
        generations.MapPost("/{id}/fork", ForkAsync).WithSummary("A new generation whose output starts with this one's up to at_seq.");
        generations.MapDelete("/{id}", DeleteAsync).WithSummary("Deletes a generation that is not running.");
        generations.MapGet("/{id}/events", EventsAsync).WithSummary("Audit trail, newest first.");
        generations.MapGet("/{id}/log", LogAsync).WithSummary("Durable event log (chunks and status changes) after a seq, as JSON.");
        generations.MapGet("/{id}/stream", StreamAsync).WithSummary("Server-Sent Events: stored events after ?after= (or Last-Event-ID), then the live tail.");
        return generations;
    }

    private enum ControlKind
    {
        Pause,
        Resume,
        Cancel,
    }

    private static async Task<Results<Created<Wire.Generation>, Ok<Wire.Generation>>> CreateAsync(
        Wire.CreateGenerationRequest request,
        HttpContext context,
        GenerationSessions sessions,
        CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        string? idempotencyKey = context.Request.Headers[IdempotencyHeader];
        if (idempotencyKey is not null)
        {
            ValidId(idempotencyKey, "Idempotency-Key");
        }

        if (request.PreviousSessionId is not null)
        {
            // Chaining after another user's session must not reveal it exists.
            await sessions.GetAsync(ValidId(request.PreviousSessionId, "previous_session_id"), OwnerScope(caller), cancellationToken);
        }

        var result = await sessions.CreateAsync(
            new CreateGenerationRequest
            {
                Owner = caller.User,
                Model = request.Model ?? string.Empty,
                Backend = request.Backend,
                Input = (request.Input ?? []).Select(m => new GenerationMessage(m?.Role!, m?.Content!)).ToList(),
                Parameters = GenerationMapping.ToCore(request.Parameters),
                PreviousSessionId = request.PreviousSessionId,
                Metadata = request.Metadata,
                IdempotencyKey = idempotencyKey,
            },
            ActorOf(caller),
            cancellationToken);
        var body = GenerationMapping.ToWire(result.Session);
        return result.Created
            ? TypedResults.Created($"/api/v1/generations/{result.Session.Id}", body)
            : TypedResults.Ok(body);
    }

    private static async Task<Ok<Wire.ItemPage<Wire.Generation>>> ListAsync(
        string? status,
        int? limit,
        string? cursor,
        HttpContext context,
        GenerationSessions sessions,
        CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        if (cursor is { Length: > 200 })
        {
            throw new InvalidSessionInputException("cursor", "'cursor' is not one this server handed out.");
        }

        var page = await sessions.ListAsync(
            new GenerationListQuery { Owner = OwnerScope(caller), Status = GenerationMapping.ParseStatus(status), Limit = ValidLimit(limit), Cursor = cursor },
            cancellationToken);
        return TypedResults.Ok(new Wire.ItemPage<Wire.Generation>(page.Items.Select(GenerationMapping.ToWire).ToList(), page.NextCursor));
    }

    private static async Task<Ok<Wire.Generation>> GetAsync(string id, HttpContext context, GenerationSessions sessions, GenerationRunner runner, CancellationToken cancellationToken)
    {
        var session = await sessions.GetAsync(ValidId(id), OwnerScope(context.Caller()), cancellationToken);
        var holder = session.Status == GenerationStatus.Running ? await runner.FindHolderAsync(session.Id, cancellationToken) : null;
        return TypedResults.Ok(GenerationMapping.ToWire(session) with
        {
            Holder = holder is null ? null : new Wire.SessionHolder(holder.NodeId, holder.Epoch, holder.LeaseExpiresAt),
        });
    }

    private static async Task<Ok<Wire.Generation>> ControlAsync(
        string id,
        ControlKind kind,
        double? wait,
        Wire.ControlRequest? body,
        HttpContext context,
        CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var services = context.RequestServices;
        var succeeded = false;
        TimeSpan? waitFor = null;
        try
        {
            var sessions = services.GetRequiredService<GenerationSessions>();
            var caller = context.Caller();
            ValidId(id);
            waitFor = ValidWait(wait, services.GetRequiredService<IOptions<ServerOptions>>().Value.MaxControlWait);
            if (body?.Reason is { Length: > 200 })
            {
                throw new InvalidSessionInputException("reason", "'reason' is at most 200 characters.");
            }

            var actor = ActorOf(caller, body?.Reason);
            var scope = OwnerScope(caller);
            var session = kind switch
            {
                ControlKind.Pause => await sessions.PauseAsync(id, actor, scope, body?.ExpectedVersion, waitFor, cancellationToken),
                ControlKind.Resume => await sessions.ResumeAsync(id, actor, scope, body?.ExpectedVersion, waitFor, cancellationToken),
                _ => await sessions.CancelAsync(id, actor, scope, body?.ExpectedVersion, waitFor, cancellationToken),
            };
            succeeded = true;
            return TypedResults.Ok(GenerationMapping.ToWire(session));
        }
        finally
        {
            services.GetRequiredService<ServerMetrics>().RecordControl(
                kind.ToString().ToLowerInvariant(), waitFor is not null, succeeded, Stopwatch.GetElapsedTime(started));
        }
    }

    private static async Task<Created<Wire.Generation>> ForkAsync(
        string id,
        Wire.ForkRequest? body,
        HttpContext context,
        GenerationSessions sessions,
        CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var fork = await sessions.ForkAsync(ValidId(id), ActorOf(caller), OwnerScope(caller), ValidSeq(body?.AtSeq, "at_seq"), cancellationToken);
        return TypedResults.Created($"/api/v1/generations/{fork.Id}", GenerationMapping.ToWire(fork));
    }

    private static async Task<NoContent> DeleteAsync(string id, HttpContext context, GenerationSessions sessions, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        await sessions.DeleteAsync(ValidId(id), ActorOf(caller), OwnerScope(caller), cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<Wire.AuditPage>> EventsAsync(
        string id,
        long? before,
        int? limit,
        HttpContext context,
        GenerationSessions sessions,
        CancellationToken cancellationToken)
    {
        var page = await sessions.ReadAuditAsync(ValidId(id), OwnerScope(context.Caller()), ValidSeq(before, "before"), ValidLimit(limit, 1000, 100), cancellationToken);
        return TypedResults.Ok(EndpointHelpers.ToWire(page));
    }

    private static async Task<Ok<Wire.LogPage>> LogAsync(
        string id,
        long? after,
        int? limit,
        HttpContext context,
        GenerationSessions sessions,
        CancellationToken cancellationToken)
    {
        var events = await sessions.ReadLogAsync(ValidId(id), OwnerScope(context.Caller()), ValidSeq(after, "after") ?? 0, ValidLimit(limit, 5000, 500), cancellationToken);
        return TypedResults.Ok(new Wire.LogPage(events.Select(GenerationMapping.ToWire).ToList()));
    }

    private static async Task StreamAsync(
        string id,
        long? after,
        HttpContext context,
        GenerationSessions sessions,
        GenerationStream stream,
        CancellationToken cancellationToken)
    {
        ValidId(id);
        var from = ValidSeq(after, "after") ?? 0;
        if (context.Request.Headers["Last-Event-ID"] is { Count: > 0 } lastEventId)
        {
            // A reconnecting EventSource repeats the original URL; the last id it saw wins.
            if (!long.TryParse(lastEventId[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out from))
            {
                throw new InvalidSessionInputException("Last-Event-ID", "'Last-Event-ID' must be the number of the last event received.");
            }
        }

        await stream.WriteAsync(context, id, OwnerScope(context.Caller()), from, cancellationToken);
    }

    /// <summary>Null for an admin (sees every session), else the caller's own name.</summary>
    internal static string? OwnerScope(Principal caller) => caller.IsAdmin ? null : caller.User;

    private static TimeSpan? ValidWait(double? seconds, TimeSpan max)
    {
        if (seconds is null)
        {
            return null;
        }

        if (double.IsNaN(seconds.Value) || seconds < 0 || seconds > max.TotalSeconds)
        {
            throw new InvalidSessionInputException("wait", $"'wait' is in seconds, from 0 to {max.TotalSeconds:0}.");
        }

        return TimeSpan.FromSeconds(seconds.Value);
    }
}
