using System.Net;
using System.Net.Sockets;
using Holdfast.Client;
using Holdfast.Sessions;

namespace Holdfast.Cli.Output;

/// <summary>
/// Exit codes of every <c>holdfast</c> command (documented in the README's CLI reference). An error also prints one
/// line on stderr.
/// </summary>
internal static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Ok = 0;

    /// <summary>Any other error (including a generation that ended in <c>failed</c> for <c>attach</c>).</summary>
    public const int Error = 1;

    /// <summary>Bad usage: unknown command or option, missing or invalid argument, input the server rejected (400/422).</summary>
    public const int Usage = 2;

    /// <summary>The session (or key) does not exist, or belongs to someone else (404).</summary>
    public const int NotFound = 3;

    /// <summary>The request does not fit the session's current state (409), e.g. resuming a completed generation.</summary>
    public const int Conflict = 4;

    /// <summary>The server could not be reached (nothing listening on the socket or URL).</summary>
    public const int CannotConnect = 5;

    /// <summary>Interrupted with Ctrl-C.</summary>
    public const int Interrupted = 130;

    /// <summary>Maps an exception to its exit code and the one line printed on stderr.</summary>
    public static (int Code, string Message) From(Exception exception, string? target = null) => exception switch
    {
        HoldfastApiException { Status: HttpStatusCode.NotFound } e => (NotFound, e.Message),
        HoldfastApiException { Status: HttpStatusCode.Conflict or HttpStatusCode.PreconditionFailed } e => (Conflict, e.Message),
        HoldfastApiException { Status: HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity or HttpStatusCode.RequestEntityTooLarge } e => (Usage, e.Message),
        HoldfastApiException { Status: HttpStatusCode.Unauthorized } e => (Error, $"{e.Message} (pass an API key with --key or HOLDFAST_KEY)"),
        HoldfastApiException e => (Error, $"{e.Message} (HTTP {(int)e.Status})"),
        HttpRequestException e when IsConnectFailure(e) => (CannotConnect, Unreachable(target, Innermost(e).Message)),
        SocketException e => (CannotConnect, Unreachable(target, e.Message)),
        Security.ApiKeyNotFoundException e => (NotFound, e.Message),
        SessionNotFoundException e => (NotFound, e.Message),
        SessionConflictException e => (Conflict, e.Message),
        InvalidSessionInputException e => (Usage, e.Message),
        StoreUnavailableException e => (CannotConnect, e.Message),
        StoreConfigurationException e => (Usage, e.Message),
        StoreSchemaException e => (Usage, e.Message),
        Microsoft.Extensions.Options.OptionsValidationException e => (Usage, e.Message),
        UsageException e => (Usage, e.Message),
        OperationCanceledException => (Interrupted, "Interrupted."),
        TimeoutException e => (Error, e.Message),
        HttpRequestException e => (Error, Innermost(e).Message),
        _ => (Error, exception.Message),
    };

    private static string Unreachable(string? target, string reason)
    {
        if (target is not null && target.StartsWith("unix:", StringComparison.Ordinal) && !File.Exists(target[5..]))
        {
            return $"Cannot reach the Holdfast server: there is no socket at {target[5..]} (start it with `holdfast serve`, set HOLDFAST_DATA, or pass --url).";
        }

        return $"Cannot reach the Holdfast server{(target is null ? string.Empty : " at " + target)}: {reason} (is `holdfast serve` running?)";
    }

    private static bool IsConnectFailure(HttpRequestException e) =>
        e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError || e.InnerException is SocketException;

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }
}

/// <summary>A usage error found by a command itself (exit code 2).</summary>
internal sealed class UsageException(string message) : Exception(message);
