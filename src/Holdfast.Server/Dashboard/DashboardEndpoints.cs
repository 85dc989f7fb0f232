using Holdfast.Bots;
using Holdfast.Client.Models;
using Holdfast.Generation;
using Holdfast.Security;
using Holdfast.Server.Errors;
using Holdfast.Server.Hosting;
using Holdfast.Server.Security;
using Holdfast.Server.Streaming;
using Holdfast.Sessions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static Holdfast.Server.Endpoints.EndpointHelpers;

namespace Holdfast.Server.Dashboard;

/// <summary>
/// The web dashboard at <c>/</c>: its pages (one HTML shell for <c>/</c>, <c>/signin</c>, <c>/generations/{id}</c>
/// and <c>/bots/{id}</c>, so every view has an address that opens directly), its embedded files under
/// <c>/dashboard/</c>, and <c>/api/v1/dashboard</c>: sign-in and sign-out (the cookie), who is signed in, one-time
/// login links, and the live sessions feed (Server-Sent Events). Everything else the pages show comes from the
/// ordinary <c>/api/v1</c> endpoints, with the same owner rules: another user's session is never shown.
/// </summary>
internal static class DashboardEndpoints
{
    /// <summary>The pages' security headers: only this server's own scripts, styles, images and connections.</summary>
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    public static IServiceCollection AddHoldfastDashboard(this IServiceCollection services)
    {
        services.TryAddSingleton<DashboardAssets>();
        services.TryAddSingleton<DashboardLoginLinks>();
        services.TryAddSingleton<DashboardSessionFeed>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, DashboardSessionFeedService>());
        return services;
    }

    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app)
    {
        foreach (var page in (string[])["/", "/signin", "/generations/{id}", "/bots/{id}"])
        {
            app.MapGet(page, Page).AllowAnonymous().DisableRateLimiting().ExcludeFromDescription();
        }

        app.MapGet("/dashboard/{*path}", Asset).AllowAnonymous().DisableRateLimiting().ExcludeFromDescription();

        var api = app.MapGroup("/api/v1/dashboard").WithTags("Dashboard");
        api.MapPost("/sign-in", SignInAsync).AllowAnonymous()
            .WithSummary("Signs this browser in with an API key or a one-time login token: sets the HttpOnly, SameSite=Strict dashboard cookie.");
        api.MapPost("/sign-out", (Delegate)SignOutAsync).AllowAnonymous().WithSummary("Signs this browser out (deletes the dashboard cookie).");
        api.MapGet("/me", Me).WithSummary("Who this request is signed in as, and how.");
        api.MapPost("/login-links", CreateLoginLink)
            .WithSummary("A one-time dashboard login link for the caller (what 'holdfast dashboard' prints); not with the dashboard cookie.");
        api.MapGet("/sessions/stream", SessionsStreamAsync)
            .WithSummary("Server-Sent Events: a snapshot of the caller's generation and bot sessions (?kind=, ?id=), then every change live; with ?id=, 'deliveries' when the session's webhook deliveries changed.");
        return app;
    }

    private static IResult Page(HttpContext context, DashboardAssets assets)
    {
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.CacheControl = "no-cache";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.XFrameOptions = "DENY";
        var index = assets.Find(DashboardAssets.IndexPath)!;
        return TypedResults.Bytes(index.Content, index.ContentType);
    }

    private static IResult Asset(string path, HttpContext context, DashboardAssets assets)
    {
        if (assets.Find(path) is not { } asset || path == DashboardAssets.IndexPath)
        {
            return ProblemResults.NotFound($"The dashboard has no file '{(path.Length > 80 ? path[..80] : path)}'.");
        }

        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers.XContentTypeOptions = "nosniff";
        context.Response.Headers.ETag = asset.ETag;
        if (string.Equals(context.Request.Headers.IfNoneMatch, asset.ETag, StringComparison.Ordinal))
        {
            return TypedResults.StatusCode(StatusCodes.Status304NotModified);
        }

        return TypedResults.Bytes(asset.Content, asset.ContentType);
    }

    private static async Task<Results<Ok<DashboardUser>, ProblemHttpResult>> SignInAsync(
        DashboardSignInRequest request,
        HttpContext context,
        ApiKeys keys,
        DashboardLoginLinks links,
        ILogger<DashboardLoginLinks> logger,
        CancellationToken cancellationToken)
    {
        if (context.Request.Headers[DashboardCookieAuthentication.DashboardHeader].Count == 0)
        {
            return ProblemResults.Problem(
                StatusCodes.Status403Forbidden,
                "Forbidden",
                $"Sign in from the dashboard page (it sends the '{DashboardCookieAuthentication.DashboardHeader}' header).");
        }

        Principal? principal;
        string method;
        if (!string.IsNullOrEmpty(request.ApiKey))
        {
            principal = await keys.AuthenticateAsync(request.ApiKey.Trim(), cancellationToken);
            method = "API key";
        }
        else if (!string.IsNullOrEmpty(request.LoginToken))
        {
            principal = links.Redeem(request.LoginToken);
            method = "login link";
        }
        else
        {
            return ProblemResults.BadRequest("api_key", "Enter an API key (create one with 'holdfast keys create --user NAME'), or open a login link from 'holdfast dashboard'.");
        }

        if (principal is null)
        {
            var detail = method == "API key"
                ? "That API key is not valid, or it has been revoked. Check it, or create one with 'holdfast keys create --user NAME'."
                : $"This login link is not valid: it was used already, or it is older than {DashboardLoginLinks.Lifetime.TotalMinutes:0} minutes. Run 'holdfast dashboard' for a new one.";
            Log.DashboardSignInRefused(logger, context.Connection.RemoteIpAddress?.ToString() ?? "unix socket", method == "API key" ? "invalid API key" : "invalid login link");
            return ProblemResults.Problem(StatusCodes.Status401Unauthorized, "Sign-in failed", detail);
        }

        await DashboardCookieAuthentication.SignInAsync(context, principal);
        Log.DashboardSignedIn(logger, principal.User, method);
        return TypedResults.Ok(new DashboardUser(principal.User, principal.IsAdmin, "cookie"));
    }

    private static async Task<NoContent> SignOutAsync(HttpContext context)
    {
        await DashboardCookieAuthentication.SignOutAsync(context);
        return TypedResults.NoContent();
    }

    private static Ok<DashboardUser> Me(HttpContext context)
    {
        var caller = context.Caller();
        var how = DashboardCookieAuthentication.IsCookieRequest(context) ? "cookie"
            : caller.KeyId is null ? "socket"
            : "key";
        return TypedResults.Ok(new DashboardUser(caller.User, caller.IsAdmin, how));
    }

    private static Results<Ok<DashboardLoginLink>, ProblemHttpResult> CreateLoginLink(
        HttpContext context,
        DashboardLoginLinks links,
        IOptions<ServerOptions> options,
        IServer server,
        ILogger<DashboardLoginLinks> logger)
    {
        if (DashboardCookieAuthentication.IsCookieRequest(context))
        {
            return ProblemResults.Problem(StatusCodes.Status403Forbidden, "Forbidden", "Login links are made with 'holdfast dashboard' (the Unix socket or an API key), not from a signed-in browser.");
        }

        var baseUrl = options.Value.PublicUrl
            ?? server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault(a => !a.Contains("unix:", StringComparison.Ordinal));
        if (baseUrl is null)
        {
            return ProblemResults.Problem(
                StatusCodes.Status409Conflict,
                "No web address",
                "This server listens on no TCP address, so a browser cannot reach the dashboard; start it with --urls http://127.0.0.1:7400 (or set Server:PublicUrl).");
        }

        var caller = context.Caller();
        var (token, expiresAt) = links.Create(caller);
        Log.DashboardLinkCreated(logger, caller.User, expiresAt);
        return TypedResults.Ok(new DashboardLoginLink($"{baseUrl.TrimEnd('/')}/signin#token={token}", expiresAt));
    }

    private static async Task SessionsStreamAsync(
        string? kind,
        string? id,
        HttpContext context,
        DashboardSessionFeed feed,
        GenerationSessions generations,
        BotManager bots,
        IOptions<ServerOptions> options,
        IHostApplicationLifetime lifetime,
        CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var scope = caller.IsAdmin ? null : caller.User;
        SessionKind? only = kind switch
        {
            null or "" => null,
            "generation" => SessionKind.Generation,
            "bot" => SessionKind.Bot,
            _ => throw new InvalidSessionInputException("kind", "'kind' must be 'generation' or 'bot'."),
        };
        if (id is not null)
        {
            ValidId(id);
            if (only is null)
            {
                throw new InvalidSessionInputException("kind", "'kind' is required with 'id' ('generation' or 'bot').");
            }
        }

        using var subscriber = feed.Subscribe(scope, only, id);
        DashboardSession? single = null;
        if (id is not null)
        {
            // Before any byte: a missing session, or another user's, is a 404 problem like everywhere else.
            single = only == SessionKind.Generation
                ? await feed.RowAsync(await generations.GetAsync(id, scope, cancellationToken), cancellationToken)
                : DashboardSession.From(await Endpoints.BotEndpoints.FindOwnedAsync(id, caller, bots, cancellationToken));
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        var token = stop.Token;
        var sse = new SseWriter(context.Response);
        try
        {
            await sse.StartAsync(token);
            await sse.WriteEventAsync("begin", new { }, null, token);
            int generationCount = 0, botCount = 0;
            if (single is not null)
            {
                await WriteSnapshotAsync(sse, subscriber, [single], token);
                (generationCount, botCount) = only == SessionKind.Generation ? (1, 0) : (0, 1);
            }
            else
            {
                if (only is null or SessionKind.Generation)
                {
                    string? cursor = null;
                    do
                    {
                        var page = await generations.ListAsync(new GenerationListQuery { Owner = scope, Limit = 500, Cursor = cursor }, token);
                        var rows = new List<DashboardSession>(page.Items.Count);
                        foreach (var session in page.Items)
                        {
                            rows.Add(await feed.RowAsync(session, token));
                        }

                        await WriteSnapshotAsync(sse, subscriber, rows, token);
                        generationCount += page.Items.Count;
                        cursor = page.NextCursor;
                    }
                    while (cursor is not null);
                }

                if (only is null or SessionKind.Bot)
                {
                    string? cursor = null;
                    do
                    {
                        var page = await bots.ListAsync(new BotListQuery(Owner: scope, After: cursor, Limit: 500), token);
                        await WriteSnapshotAsync(sse, subscriber, page.Items.Select(DashboardSession.From).ToList(), token);
                        botCount += page.Items.Count;
                        cursor = page.NextCursor;
                    }
                    while (cursor is not null);
                }
            }

            await sse.WriteEventAsync("ready", new DashboardReady(generationCount, botCount, await feed.LiveNodesAsync(token)), null, token);
            await sse.FlushAsync(token);

            // The feed completes when this browser fell too far behind: it reconnects and starts over from a fresh snapshot.
            var heartbeat = options.Value.HeartbeatInterval;
            while (await IdleHeartbeat.WaitToReadAsync(subscriber.Reader, heartbeat, () => sse.HeartbeatAsync(token), token))
            {
                while (subscriber.Reader.TryRead(out var batch))
                {
                    if (batch.Rows.Count > 0)
                    {
                        await sse.WriteEventAsync("upsert", new DashboardSessionBatch(batch.Rows), null, token);
                    }

                    if (batch.Removed.Count > 0)
                    {
                        await sse.WriteEventAsync("remove", new DashboardRemovedBatch(batch.Removed), null, token);
                    }

                    if (batch.WebhookDeliveries.Count > 0)
                    {
                        await sse.WriteEventAsync("deliveries", new DashboardRemovedBatch(batch.WebhookDeliveries), null, token);
                    }
                }

                await sse.FlushAsync(token);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The browser left or the server is stopping; EventSource reconnects by itself.
        }
    }

    private static async Task WriteSnapshotAsync(SseWriter sse, DashboardSessionFeed.Subscriber subscriber, IReadOnlyList<DashboardSession> rows, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
        {
            return;
        }

        subscriber.Remember(rows);
        await sse.WriteEventAsync("snapshot", new DashboardSessionBatch(rows), null, cancellationToken);
        await sse.FlushAsync(cancellationToken);
    }
}
