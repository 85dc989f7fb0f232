using System.Text;
using Holdfast.Server.Metrics;
using Holdfast.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Holdfast.Server.Endpoints;

/// <summary><c>/healthz</c>, <c>/readyz</c> and <c>/metrics</c>: open without a key, they reveal no session data.</summary>
internal static class OpsEndpoints
{
    public static IEndpointRouteBuilder MapOpsEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Text("ok\n"))
            .AllowAnonymous()
            .DisableRateLimiting()
            .WithSummary("Liveness: the process answers.");
        app.MapGet("/readyz", ReadyAsync)
            .AllowAnonymous()
            .DisableRateLimiting()
            .WithSummary("Readiness: the store answers, accepts writes, has no damaged page found, and its schema is current.");
        app.MapGet("/metrics", MetricsAsync)
            .AllowAnonymous()
            .DisableRateLimiting()
            .WithSummary("Prometheus text: sessions by status, chunks persisted, flush and control latency.");
        return app;
    }

    private static async Task<Results<ContentHttpResult, ProblemHttpResult>> ReadyAsync(HttpContext context, IStoreAdministration store, CancellationToken cancellationToken)
    {
        try
        {
            // The store answers, accepts writes (a full disk is not ready until a write commits again, which the ping
            // tries each time), and no damaged page was found.
            await store.PingAsync(cancellationToken);
        }
        catch (Sessions.StoreUnavailableException ex)
        {
            if (ex.RetryAfter is { } retryAfter)
            {
                context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            return Errors.ProblemResults.Problem(StatusCodes.Status503ServiceUnavailable, "Not ready", ex.Message);
        }

        try
        {
            // Read-only on purpose: a probe never takes a write lock, and sees what another process did to the schema.
            var status = await store.GetSchemaStatusAsync(cancellationToken);
            if (!status.IsCurrent)
            {
                var why = status.Problems.Count > 0 ? string.Join(" ", status.Problems) : $"{status.Pending.Count} migration(s) are pending; run 'holdfast migrate'.";
                return Errors.ProblemResults.Problem(StatusCodes.Status503ServiceUnavailable, "Not ready", why);
            }
        }
        catch (Exception ex) when (ex is Sessions.HoldfastException or System.Data.Common.DbException or IOException or UnauthorizedAccessException)
        {
            return Errors.ProblemResults.Problem(StatusCodes.Status503ServiceUnavailable, "Not ready", "The store does not answer: " + ex.Message);
        }

        return TypedResults.Text("ready\n");
    }

    private static async Task<ContentHttpResult> MetricsAsync(
        PrometheusMetrics metrics, SessionCounts counts, Holdfast.Generation.GenerationRunner runner, TimeProvider time, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        await counts.AppendAsync(text, cancellationToken);
        await AppendNodesAsync(text, runner, time, cancellationToken);
        text.Append(metrics.Render());
        return TypedResults.Text(text.ToString(), "text/plain; version=0.0.4; charset=utf-8");
    }

    /// <summary>The nodes on the store: seconds since each one's heartbeat and the sessions it holds (node ids are not session data).</summary>
    private static async Task AppendNodesAsync(StringBuilder text, Holdfast.Generation.GenerationRunner runner, TimeProvider time, CancellationToken cancellationToken)
    {
        var nodes = await runner.ListNodesAsync(cancellationToken);
        var now = time.GetUtcNow();
        text.Append("# HELP holdfast_node_heartbeat_age_seconds Seconds since each node's last heartbeat (written with every lease renewal).\n");
        text.Append("# TYPE holdfast_node_heartbeat_age_seconds gauge\n");
        foreach (var n in nodes.Where(n => n.StoppedAt is null))
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"holdfast_node_heartbeat_age_seconds{{node=\"{n.NodeId}\"}} {Math.Max(0, (now - n.HeartbeatAt).TotalSeconds):0.###}\n");
        }

        text.Append("# HELP holdfast_node_sessions_held Running generation sessions each node holds under a lease.\n");
        text.Append("# TYPE holdfast_node_sessions_held gauge\n");
        foreach (var n in nodes.Where(n => n.StoppedAt is null))
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"holdfast_node_sessions_held{{node=\"{n.NodeId}\"}} {n.SessionsHeld}\n");
        }
    }
}
