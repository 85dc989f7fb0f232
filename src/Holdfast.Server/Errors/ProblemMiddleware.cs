using System.Globalization;
using Holdfast.Server.Hosting;
using Holdfast.Sessions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Holdfast.Server.Errors;

/// <summary>
/// Catches what an endpoint throws and answers with a problem (see <see cref="ProblemResults.Map"/>); anything
/// unexpected is logged with its trace id and answered 500 without internals.
/// </summary>
internal sealed class ProblemMiddleware(RequestDelegate next, ILogger<ProblemMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
        }
        catch (Exception exception) when (ProblemResults.Map(exception) is { } problem)
        {
            if (problem.Status >= 500)
            {
                Log.RequestFailedOnServer(logger, context.Request.Method, context.Request.Path, exception.Message);
            }

            if (exception is StoreUnavailableException { RetryAfter: { } retryAfter } && !context.Response.HasStarted)
            {
                // A full disk passes by itself once space is freed: tell clients when to try again.
                context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            }

            await ProblemResults.WriteAsync(context, problem.Status, problem.Title, problem.Detail, problem.Errors, ProblemResults.CodeOf(exception));
        }
        catch (Exception exception)
        {
            Log.UnexpectedError(logger, exception, context.Request.Method, context.Request.Path, context.TraceIdentifier);
            await ProblemResults.WriteAsync(
                context,
                StatusCodes.Status500InternalServerError,
                "Internal error",
                $"The server failed to handle this request; the error is in its log under trace id {context.TraceIdentifier}.");
        }
    }
}
