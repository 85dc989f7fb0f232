using System.Text;
using Holdfast.Server.Metrics;
using Holdfast.Storage.Migrations;
using Holdfast.Storage.Sqlite;
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

    private static async Task<Results<ContentHttpResult, ProblemHttpResult>> ReadyAsync(HttpContext context, SqliteDatabase database, CancellationToken cancellationToken)
    {
        if (database.Damage is { } damage)
        {
            // Sticky: a damaged page does not heal; the operator restores a backup (and restarts).
            return Errors.ProblemResults.Problem(StatusCodes.Status503ServiceUnavailable, "Not ready", damage);
        }

        if (await database.ProbeWritableAsync(cancellationToken) is { } failure)
        {
            // Writes fail (a full disk): not ready until one commits again, which this probe tries each time.
            context.Response.Headers.RetryAfter = ((int)SqliteDatabase.WriteFailureRetryAfter.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Errors.ProblemResults.Problem(StatusCodes.Status503ServiceUnavailable, "Not ready", failure);
        }

        try
        {
            // Read-only on purpose: a probe must not take the writer lock (GetMigrationStatusAsync bootstraps the
            // table in a write transaction), and sees what another process did to the schema underneath.
            var applied = await database.ReadAsync(connection => SqliteDatabase.ReadAppliedMigrationsAsync(connection, cancellationToken), cancellationToken);
            var status = MigrationPlanner.Compare("sqlite", database.Migrations, applied);
            if (!status.IsCurrent)
            {
                var why = status.Problems.Count > 0 ? string.Join(" ", status.Problems) : $"{status.Pending.Count} migration(s) are pending; run 'holdfast migrate'.";
                return Errors.ProblemResults.Problem(StatusCodes.Status503ServiceUnavailable, "Not ready", why);
            }
        }
        catch (Exception ex) when (ex is Sessions.HoldfastException or Microsoft.Data.Sqlite.SqliteException or IOException or UnauthorizedAccessException)
        {
            return Errors.ProblemResults.Problem(StatusCodes.Status503ServiceUnavailable, "Not ready", "The store does not answer: " + ex.Message);
        }

        return TypedResults.Text("ready\n");
    }

    private static async Task<ContentHttpResult> MetricsAsync(PrometheusMetrics metrics, SessionCounts counts, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        await counts.AppendAsync(text, cancellationToken);
        text.Append(metrics.Render());
        return TypedResults.Text(text.ToString(), "text/plain; version=0.0.4; charset=utf-8");
    }
}
