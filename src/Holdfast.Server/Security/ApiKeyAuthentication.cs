using System.Security.Claims;
using System.Text.Encodings.Web;
using Holdfast.Security;
using Holdfast.Server.Errors;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Holdfast.Server.Security;

/// <summary>
/// Who is calling: over the Unix socket, the local admin (the socket file is 0600, so only its owner can connect);
/// over TCP, the user of the <c>Authorization: Bearer</c> API key. A missing or bad key is a 401 problem.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeys keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "HoldfastKey";

    internal const string AdminClaim = "holdfast:admin";
    internal const string KeyIdClaim = "holdfast:key";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (IsUnixSocket(Context))
        {
            return Success(Principal.LocalAdmin);
        }

        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header))
        {
            return AuthenticateResult.NoResult();
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.Fail("The Authorization header must be 'Bearer <API key>'.");
        }

        var principal = await keys.AuthenticateAsync(header["Bearer ".Length..].Trim(), Context.RequestAborted);
        return principal is null
            ? AuthenticateResult.Fail("The API key is not valid or has been revoked.")
            : Success(principal);
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        var failure = (await HandleAuthenticateOnceSafeAsync()).Failure?.Message;
        await ProblemResults.WriteAsync(
            Context,
            StatusCodes.Status401Unauthorized,
            "Authentication required",
            failure ?? "This endpoint needs an API key: send 'Authorization: Bearer <key>' (create one with 'holdfast keys create --user NAME'), or use the Unix socket.");
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ProblemResults.WriteAsync(Context, StatusCodes.Status403Forbidden, "Forbidden", "This endpoint is for admins only.");

    /// <summary>True when the request came in over the Unix domain socket.</summary>
    /// Kestrel gives TCP connections IP endpoints on both ends and Unix-socket connections none, and the
    /// server listens on nothing else.
    public static bool IsUnixSocket(HttpContext context) =>
        context.Connection.LocalIpAddress is null && context.Connection.RemoteIpAddress is null;

    private AuthenticateResult Success(Principal principal) =>
        AuthenticateResult.Success(new AuthenticationTicket(ToClaimsPrincipal(principal, SchemeName), SchemeName));

    /// <summary>The claims of <paramref name="principal"/> (user, admin, key id) under <paramref name="scheme"/>; <see cref="GetPrincipal"/> reads them back.</summary>
    internal static ClaimsPrincipal ToClaimsPrincipal(Principal principal, string scheme)
    {
        var claims = new List<Claim>
        {
            new(ClaimTypes.Name, principal.User),
            new(AdminClaim, principal.IsAdmin ? "true" : "false"),
        };
        if (principal.KeyId is not null)
        {
            claims.Add(new Claim(KeyIdClaim, principal.KeyId));
        }

        if (principal.IsAdmin)
        {
            claims.Add(new Claim(ClaimTypes.Role, "admin"));
        }

        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme));
    }

    /// <summary>The <see cref="Principal"/> of an authenticated request.</summary>
    public static Principal GetPrincipal(ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var name = user.FindFirstValue(ClaimTypes.Name)
            ?? throw new InvalidOperationException("The request is not authenticated; the endpoint should require authorization.");
        return new Principal(
            name,
            string.Equals(user.FindFirstValue(AdminClaim), "true", StringComparison.Ordinal),
            user.FindFirstValue(KeyIdClaim));
    }

    /// <summary>The rate-limit partition of a request: its key id, "local" on the socket, else its remote address.</summary>
    public static string RateLimitPartition(HttpContext context) =>
        context.User.FindFirstValue(KeyIdClaim)
        ?? (IsUnixSocket(context) ? "local" : "ip:" + (context.Connection.RemoteIpAddress?.ToString() ?? "unknown"));
}

/// <summary>Caller helpers for endpoints.</summary>
internal static class CallerExtensions
{
    /// <summary>The caller of this request.</summary>
    public static Principal Caller(this HttpContext context) => ApiKeyAuthenticationHandler.GetPrincipal(context.User);
}
