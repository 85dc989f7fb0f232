using System.Security.Claims;
using Holdfast.Security;
using Holdfast.Server.Errors;
using Holdfast.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Holdfast.Server.Security;

/// <summary>
/// Authentication of every request: the API key (<c>Authorization: Bearer</c>, or the Unix socket as the local admin)
/// and, for the web dashboard, a sign-in cookie. The cookie is HttpOnly and SameSite=Strict, holds no key (an
/// encrypted ticket with the user, the admin flag and the id of the key that signed in), lasts for the browser profile
/// (30 days, renewed while used), and authenticates the page's requests and its Server-Sent Events alike. A ticket
/// whose key has been revoked stops working within <see cref="DashboardKeyCheck.CacheFor"/>. Unsafe requests made
/// with the cookie must carry <see cref="DashboardHeader"/> (a cross-site form cannot send it), so the cookie cannot
/// be ridden by another site even where SameSite is not enforced.
/// </summary>
internal static class DashboardCookieAuthentication
{
    /// <summary>The scheme every request is authenticated with; it forwards to the key or the cookie scheme.</summary>
    public const string SelectorScheme = "Holdfast";

    public const string CookieScheme = "HoldfastDashboard";

    public const string CookieName = "holdfast_dashboard";

    /// <summary>Header the dashboard sends on every request that changes something (and on sign-in and sign-out).</summary>
    public const string DashboardHeader = "X-Holdfast-Dashboard";

    /// <summary>Lifetime of a sign-in; renewed while the dashboard is used (sliding).</summary>
    public static readonly TimeSpan SignInLifetime = TimeSpan.FromDays(30);

    /// <summary>Folder of the data directory that keeps the keys the sign-in cookies are encrypted with (0700).</summary>
    public const string KeyFolder = "dashboard-keys";

    /// <summary>Registers the key scheme, the cookie scheme, and the selector between them as the default.</summary>
    public static AuthenticationBuilder AddHoldfastAuthentication(this IServiceCollection services)
    {
        services.TryAddSingleton<DashboardKeyCheck>();

        // Cookie tickets are encrypted with Data Protection keys kept in the data directory, so a sign-in survives a
        // restart of the server. The folder is owner-only, like the rest of the data directory.
        services.AddDataProtection().SetApplicationName("holdfast");
        services.AddOptions<KeyManagementOptions>().Configure<IOptions<StorageOptions>, ILoggerFactory>((options, storage, loggers) =>
        {
            var folder = Path.Combine(storage.Value.ResolveDataDirectory(), KeyFolder);
            options.XmlRepository = new FileSystemXmlRepository(new DirectoryInfo(folder), loggers);
        });

        return services.AddAuthentication(SelectorScheme)
            .AddPolicyScheme(SelectorScheme, "API key or dashboard sign-in", options => options.ForwardDefaultSelector = SelectScheme)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null)
            .AddCookie(CookieScheme, options =>
            {
                options.Cookie.Name = CookieName;
                options.Cookie.HttpOnly = true;
                options.Cookie.SameSite = SameSiteMode.Strict;
                options.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                options.Cookie.Path = "/";
                options.Cookie.IsEssential = true;
                options.ExpireTimeSpan = SignInLifetime;
                options.SlidingExpiration = true;

                // An API client gets the key scheme's 401/403 problem, never a redirect to a login page.
                options.ForwardChallenge = ApiKeyAuthenticationHandler.SchemeName;
                options.ForwardForbid = ApiKeyAuthenticationHandler.SchemeName;
                options.Events.OnValidatePrincipal = ValidateAsync;
            });
    }

    /// <summary>
    /// Key (or socket) when the request brings one; the cookie only when it brings the cookie and nothing else, so an
    /// API client is never authenticated by a cookie it did not mean to send.
    /// </summary>
    private static string SelectScheme(HttpContext context) =>
        !ApiKeyAuthenticationHandler.IsUnixSocket(context)
        && context.Request.Headers.Authorization.Count == 0
        && context.Request.Cookies.ContainsKey(CookieName)
            ? CookieScheme
            : ApiKeyAuthenticationHandler.SchemeName;

    /// <summary>Signs the browser in as <paramref name="principal"/> (sets the cookie). Completes when the cookie is on the response.</summary>
    public static Task SignInAsync(HttpContext context, Principal principal) =>
        context.SignInAsync(
            CookieScheme,
            ApiKeyAuthenticationHandler.ToClaimsPrincipal(principal, CookieScheme),
            new AuthenticationProperties { IsPersistent = true, AllowRefresh = true });

    /// <summary>Signs the browser out (deletes the cookie).</summary>
    public static Task SignOutAsync(HttpContext context) => context.SignOutAsync(CookieScheme);

    /// <summary>True when this request was authenticated by the dashboard cookie.</summary>
    public static bool IsCookieRequest(HttpContext context) =>
        string.Equals(context.User.Identity?.AuthenticationType, CookieScheme, StringComparison.Ordinal);

    /// <summary>
    /// Refuses (403 problem) a request authenticated by the cookie that changes something without
    /// <see cref="DashboardHeader"/>, and ends a live stream (Server-Sent Events) opened with the cookie once the key
    /// it was signed in with is revoked, so a revoked sign-in stops seeing updates too. Runs after authentication.
    /// </summary>
    public static async Task RequireDashboardHeaderAsync(HttpContext context, Func<Task> next)
    {
        if (IsCookieRequest(context)
            && context.User.FindFirstValue(ApiKeyAuthenticationHandler.KeyIdClaim) is { } keyId
            && context.Request.Headers.Accept.Any(a => a?.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase) == true))
        {
            using var watch = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            var watcher = EndWhenRevokedAsync(context, keyId, watch.Token);
            try
            {
                await next();
            }
            finally
            {
                await watch.CancelAsync();
                await watcher;
            }

            return;
        }

        if (IsCookieRequest(context)
            && !HttpMethods.IsGet(context.Request.Method)
            && !HttpMethods.IsHead(context.Request.Method)
            && !HttpMethods.IsOptions(context.Request.Method)
            && context.Request.Headers[DashboardHeader].Count == 0)
        {
            await ProblemResults.WriteAsync(
                context,
                StatusCodes.Status403Forbidden,
                "Forbidden",
                $"A request signed in with the dashboard cookie must carry the '{DashboardHeader}' header; API clients use 'Authorization: Bearer <key>'.");
            return;
        }

        await next();
    }

    private static async Task EndWhenRevokedAsync(HttpContext context, string keyId, CancellationToken cancellationToken)
    {
        var check = context.RequestServices.GetRequiredService<DashboardKeyCheck>();
        var time = context.RequestServices.GetRequiredService<TimeProvider>();
        try
        {
            while (true)
            {
                await Task.Delay(DashboardKeyCheck.CacheFor, time, cancellationToken);
                var key = await check.FindAsync(keyId, cancellationToken);
                if (key is null || key.RevokedAt is not null)
                {
                    context.Abort();
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The stream ended first.
        }
    }

    private static async Task ValidateAsync(CookieValidatePrincipalContext context)
    {
        var keyId = context.Principal?.FindFirstValue(ApiKeyAuthenticationHandler.KeyIdClaim);
        if (keyId is null)
        {
            // Signed in through a one-time login link of the local admin: no key to check.
            return;
        }

        var check = context.HttpContext.RequestServices.GetRequiredService<DashboardKeyCheck>();
        var key = await check.FindAsync(keyId, context.HttpContext.RequestAborted);
        if (key is null || key.RevokedAt is not null)
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(CookieScheme);
            return;
        }

        var admin = string.Equals(context.Principal!.FindFirstValue(ApiKeyAuthenticationHandler.AdminClaim), "true", StringComparison.Ordinal);
        if (admin != key.IsAdmin)
        {
            // The user was made an admin since signing in: the ticket follows the key.
            context.ReplacePrincipal(ApiKeyAuthenticationHandler.ToClaimsPrincipal(new Principal(key.User, key.IsAdmin, key.Id), CookieScheme));
            context.ShouldRenew = true;
        }
    }
}

/// <summary>
/// Looks up the API key a dashboard sign-in was made with, from a list of keys read at most once per
/// <see cref="CacheFor"/>, so a revoked key's sign-ins stop working that soon without a store read per request.
/// </summary>
internal sealed class DashboardKeyCheck(ApiKeys keys, TimeProvider time) : IDisposable
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private Dictionary<string, ApiKey>? _keys;
    private long _readAt;

    public async Task<ApiKey?> FindAsync(string keyId, CancellationToken cancellationToken)
    {
        var current = Volatile.Read(ref _keys);
        if (current is null || time.GetElapsedTime(Volatile.Read(ref _readAt)) > CacheFor)
        {
            await _gate.WaitAsync(cancellationToken);
            try
            {
                current = _keys;
                if (current is null || time.GetElapsedTime(_readAt) > CacheFor)
                {
                    current = (await keys.ListAsync(cancellationToken)).ToDictionary(k => k.Id, StringComparer.Ordinal);
                    Volatile.Write(ref _keys, current);
                    Volatile.Write(ref _readAt, time.GetTimestamp());
                }
            }
            finally
            {
                _gate.Release();
            }
        }

        return current.GetValueOrDefault(keyId);
    }

    public void Dispose() => _gate.Dispose();
}
