using System.Text.Json;
using System.Text.RegularExpressions;
using Holdfast.Security;
using Holdfast.Server.Hosting;
using Holdfast.Sessions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Holdfast.Server.Errors;

/// <summary>
/// Every error of the API as <c>application/problem+json</c> with a sentence a person understands. Holdfast's own
/// exceptions are mapped here, once: not found 404, conflict 409, invalid input 400, schema or store trouble 503.
/// </summary>
internal static partial class ProblemResults
{
    public const string ContentType = "application/problem+json";

    /// <summary>Prefix of the <c>type</c> of a problem that has its own <c>code</c> (e.g. <c>bot_id_unavailable</c>).</summary>
    public const string CodeTypePrefix = "tag:holdfast,2026:problem:";

    /// <summary>
    /// A problem result for an endpoint to return. A <paramref name="code"/> (a stable, machine-readable name such
    /// as <c>bot_id_unavailable</c>) is sent as the extension member <c>code</c> and makes the <c>type</c>
    /// <c>tag:holdfast,2026:problem:{code}</c>.
    /// </summary>
    public static ProblemHttpResult Problem(int status, string title, string detail, IDictionary<string, string[]>? errors = null, string? code = null)
    {
        var problem = errors is null ? new ProblemDetails() : new HttpValidationProblemDetails(errors);
        problem.Status = status;
        problem.Title = title;
        problem.Detail = detail;
        problem.Type = code is null ? TypeFor(status) : CodeTypePrefix + code;
        if (code is not null)
        {
            problem.Extensions["code"] = code;
        }

        return TypedResults.Problem(problem);
    }

    public static ProblemHttpResult NotFound(string detail) => Problem(StatusCodes.Status404NotFound, "Not found", detail);

    public static ProblemHttpResult BadRequest(string field, string detail) =>
        Problem(StatusCodes.Status400BadRequest, "Invalid request", detail, new Dictionary<string, string[]>(StringComparer.Ordinal) { [field] = [detail] });

    /// <summary>Writes a problem straight to the response (middleware, auth handler, rate limiter).</summary>
    public static async Task WriteAsync(HttpContext context, int status, string title, string detail, IDictionary<string, string[]>? errors = null, string? code = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Response.HasStarted)
        {
            return;
        }

        context.Response.StatusCode = status;
        if (code is BotIdUnavailableException.Code)
        {
            // The one answer for "another user's id" and "an id without an owner" is the same to the byte, so it is
            // written without the per-request trace id the problem details service adds (a 409 is never looked up in
            // the server's log).
            var problem = new ProblemDetails { Status = status, Title = title, Detail = detail, Type = CodeTypePrefix + code };
            problem.Extensions["code"] = code;
            var json = context.RequestServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
            await context.Response.WriteAsJsonAsync(problem, json, ContentType, context.RequestAborted);
            return;
        }

        await Problem(status, title, detail, errors, code).ExecuteAsync(context);
    }

    /// <summary>Maps an exception to (status, title, detail, errors), or null when it is not one we report as such.</summary>
    public static (int Status, string Title, string Detail, IDictionary<string, string[]>? Errors)? Map(Exception exception) => exception switch
    {
        SessionNotFoundException e => (404, "Not found", e.Message, null),
        ApiKeyNotFoundException e => (404, "Not found", e.Message, null),
        Holdfast.Webhooks.WebhookNotFoundException e => (404, "Not found", e.Message, null),
        SessionConflictException e => (409, "Conflict", e.Message, null),
        BotIdUnavailableException e => (409, "Bot id unavailable", e.Message, null),
        ModelNotFoundException e => (404, "Model not found", e.Message, null),
        InvalidSessionInputException e => (400, "Invalid request", e.Message, new Dictionary<string, string[]>(StringComparer.Ordinal) { [e.Field] = [e.Message] }),
        StoreSchemaException e => (503, "Database schema problem", e.Message, null),
        StoreUnavailableException e => (503, "Store unavailable", e.Message, null),
        ServerStartupException e => (503, "Server not ready", e.Message, null),
        OpenAi.BackendFailedException e => (502, "Backend failed", e.Message, null),
        OpenAi.ServerStoppingException e => (503, "Server shutting down", e.Message, null),
        BadHttpRequestException e => MapBadRequest(e),
        JsonException e => (400, "Invalid request body", DescribeJson(e), null),
        _ => null,
    };

    /// <summary>The problem <c>code</c> of an exception that has one (sent with the problem), else null.</summary>
    public static string? CodeOf(Exception exception) => exception switch
    {
        BotIdUnavailableException => BotIdUnavailableException.Code,
        ModelNotFoundException => ModelNotFoundException.Code,
        _ => null,
    };

    private static (int, string, string, IDictionary<string, string[]>?) MapBadRequest(BadHttpRequestException exception)
    {
        if (exception.InnerException is JsonException json)
        {
            return (400, "Invalid request body", DescribeJson(json), null);
        }

        return exception.StatusCode switch
        {
            StatusCodes.Status413PayloadTooLarge => (413, "Request body too large", "The request body is larger than this server accepts (Server:MaxRequestBodyBytes).", null),
            StatusCodes.Status415UnsupportedMediaType => (415, "Unsupported media type", "Send the body as JSON with 'Content-Type: application/json'.", null),
            _ when exception.Message.Contains("was not provided from body", StringComparison.Ordinal) || exception.Message.Contains("body was empty", StringComparison.OrdinalIgnoreCase)
                    || exception.Message.Contains("no body was provided", StringComparison.Ordinal)
                => (400, "Missing body", "This request needs a JSON body.", null),
            _ when exception.Message.Contains("Failed to bind parameter", StringComparison.Ordinal)
                => (400, "Invalid request", DescribeBinding(exception.Message), null),
            _ => (exception.StatusCode, "Bad request", exception.Message, null),
        };
    }

    /// <summary>Turns a System.Text.Json error into a sentence naming the field and the problem.</summary>
    public static string DescribeJson(JsonException exception)
    {
        var path = exception.Path is { Length: > 1 } p ? p.TrimStart('$', '.') : null;
        var unknown = UnknownMember().Match(exception.Message);
        if (unknown.Success)
        {
            var field = string.IsNullOrEmpty(path) ? unknown.Groups["name"].Value : path;
            return $"The request has a field this API does not know: '{field}'. Check its spelling (fields are snake_case).";
        }

        if (exception.Message.Contains("could not be converted", StringComparison.Ordinal))
        {
            return path is null
                ? "The request body has the wrong shape: expected a JSON object."
                : $"The field '{path}' has the wrong type.";
        }

        if (exception.Message.Contains("Duplicate", StringComparison.OrdinalIgnoreCase))
        {
            return $"The request repeats a field{(path is null ? string.Empty : $" ('{path}')")}; send each field once.";
        }

        if (exception.Message.StartsWith('\'') && !exception.Message.Contains("LineNumber:", StringComparison.Ordinal))
        {
            // Our own converters write sentences for people. (The JSON reader's own errors start with a quote too,
            // "'1' is an invalid end of a number…", but carry a position: those are syntax errors, reported below.)
            return exception.Message;
        }

        return "The request body is not valid JSON" + (exception.LineNumber is { } line ? $" (line {line + 1}, byte {exception.BytePositionInLine + 1})." : ".");
    }

    private static string DescribeBinding(string message)
    {
        var match = BindingFailure().Match(message);
        return match.Success
            ? $"The value '{Truncate(match.Groups["value"].Value)}' is not valid for '{match.Groups["name"].Value}'."
            : "A parameter of the request has an invalid value.";
    }

    /// <summary>A sentence for a bare status code (no route, wrong method, body too large…).</summary>
    public static string DescribeStatus(int status) => status switch
    {
        400 => "The request is not valid.",
        401 => "This endpoint needs an API key: send 'Authorization: Bearer <key>'.",
        403 => "You may not do this.",
        404 => "Nothing exists at this address. The API lives under /api/v1 and /v1; see /openapi/v1.json.",
        405 => "This address does not accept this HTTP method; see /openapi/v1.json.",
        413 => "The request body is larger than this server accepts (Server:MaxRequestBodyBytes).",
        415 => "Send the body as JSON with 'Content-Type: application/json'.",
        429 => "Too many requests; wait a second and retry.",
        _ => "The request failed.",
    };

    private static string Truncate(string value) => value.Length <= 40 ? value : value[..40] + "…";

    private static string TypeFor(int status) => status switch
    {
        400 => "https://httpwg.org/specs/rfc9110.html#status.400",
        401 => "https://httpwg.org/specs/rfc9110.html#status.401",
        403 => "https://httpwg.org/specs/rfc9110.html#status.403",
        404 => "https://httpwg.org/specs/rfc9110.html#status.404",
        409 => "https://httpwg.org/specs/rfc9110.html#status.409",
        413 => "https://httpwg.org/specs/rfc9110.html#status.413",
        415 => "https://httpwg.org/specs/rfc9110.html#status.415",
        422 => "https://httpwg.org/specs/rfc9110.html#status.422",
        429 => "https://www.rfc-editor.org/rfc/rfc6585#section-4",
        502 => "https://httpwg.org/specs/rfc9110.html#status.502",
        503 => "https://httpwg.org/specs/rfc9110.html#status.503",
        _ => "about:blank",
    };

    [GeneratedRegex("The JSON property '(?<name>[^']*)' could not be mapped", RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture, 1000)]
    private static partial Regex UnknownMember();

    [GeneratedRegex("Failed to bind parameter \"(?<type>\\S+) (?<name>\\S+)\" from \"(?<value>.*)\"", RegexOptions.CultureInvariant | RegexOptions.Singleline | RegexOptions.ExplicitCapture, 1000)]
    private static partial Regex BindingFailure();
}
