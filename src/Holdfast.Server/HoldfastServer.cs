using System.Net;
using System.Threading.RateLimiting;
using Holdfast.Client.Models;
using Holdfast.Hosting;
using Holdfast.Security;
using Holdfast.Server.Dashboard;
using Holdfast.Server.Endpoints;
using Holdfast.Server.Errors;
using Holdfast.Server.Hosting;
using Holdfast.Server.Metrics;
using Holdfast.Server.OpenAi;
using Holdfast.Server.Security;
using Holdfast.Storage;
using Holdfast.Storage.Sqlite;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Holdfast.Server;

/// <summary>
/// Builds the Holdfast host: Kestrel on loopback TCP (API key) and on the Unix socket in the data directory (local
/// admin), migrations applied before anything listens, one lock per data directory. Used by <c>holdfast serve</c>
/// and by the tests, which run the very same host on port 0.
/// </summary>
public static class HoldfastServer
{
    /// <summary>A builder with Holdfast's services; <paramref name="settings"/> override configuration (tests, CLI flags).</summary>
    public static WebApplicationBuilder CreateBuilder(string[] args, IEnumerable<KeyValuePair<string, string?>>? settings = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }

        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

        // Data Protection warns that the dashboard's cookie keys are stored unencrypted: they are, in the owner-only
        // data directory, like the database itself (see DashboardCookieAuthentication).
        builder.Logging.AddFilter("Microsoft.AspNetCore.DataProtection", LogLevel.Error);
        builder.Services.AddHoldfastServer();

        // The Unix socket is made 0600 between bind and listen (see UnixSocketBinding).
        builder.WebHost.UseSockets(sockets => sockets.CreateBoundListenSocket = UnixSocketBinding.CreateBoundListenSocket);
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var options = context.Configuration.GetSection(ServerOptions.SectionName).Get<ServerOptions>() ?? new ServerOptions();
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            foreach (var url in options.UrlList())
            {
                var (address, port) = ParseUrl(url);
                kestrel.Listen(address, port);
            }

            if (options.UnixSocket)
            {
                kestrel.ListenUnixSocket(ResolveSocketPath(options, context.Configuration));
            }
        });
        return builder;
    }

    /// <summary>
    /// Builds the app and prepares its data directory: takes the directory lock, removes a stale socket, applies
    /// migrations (or refuses with <see cref="ServerStartupException"/>/<see cref="Holdfast.Sessions.StoreSchemaException"/>
    /// and a message saying what to do). Completes before anything listens; start it with <c>StartAsync</c>/<c>RunAsync</c>.
    /// </summary>
    public static async Task<WebApplication> BuildAsync(WebApplicationBuilder builder, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var app = builder.Build();

        // Listening starts now, so counts recorded before the first scrape are not lost.
        _ = app.Services.GetRequiredService<PrometheusMetrics>();
        try
        {
            // Every setting validated at start-up (ValidateOnStart) is checked now, before a file is touched or a
            // listener opened: a bad one is an OptionsValidationException naming it, not a host that fails half-way.
            app.Services.GetService<IStartupValidator>()?.Validate();
            await app.Services.GetRequiredService<ServerStartup>().PrepareAsync(cancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        app.UseMiddleware<ProblemMiddleware>();
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.Use((context, next) => DashboardCookieAuthentication.RequireDashboardHeaderAsync(context, () => next(context)));
        app.UseRateLimiter();
        app.UseAuthorization();

        app.MapOpsEndpoints();
        app.MapOpenApi().AllowAnonymous();
        var api = app.MapGroup("/api/v1");
        api.MapKeyApi();
        api.MapGenerationApi();
        api.MapBotApi();
        app.MapPairingPages();
        app.MapOpenAiApi();
        app.MapDashboard();

        app.Lifetime.ApplicationStarted.Register(() => app.Services.GetRequiredService<ServerStartup>().OnListening(app));
        return app;
    }

    /// <summary>The TCP base address the server actually listens on (port 0 resolved), e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public static Uri GetTcpAddress(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var tcp = addresses.FirstOrDefault(a => !a.Contains("unix:", StringComparison.Ordinal))
            ?? throw new InvalidOperationException("The server is not listening on TCP.");
        return new Uri(tcp);
    }

    /// <summary>
    /// Registers the server's services on top of the core's. Idempotent: a second call changes nothing (the
    /// authentication scheme, options callbacks and rate limiter would otherwise be added twice, and a second
    /// <c>AddScheme</c> throws when the options are first read).
    /// </summary>
    public static IServiceCollection AddHoldfastServer(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(HoldfastServerMarker)))
        {
            return services;
        }

        services.AddSingleton<HoldfastServerMarker>();
        services.AddHoldfastCore();
        services.AddOptions<ServerOptions>().BindConfiguration(ServerOptions.SectionName);
        services.TryAddSingleton<ApiKeyStore>();
        services.TryAddSingleton<ServerStartup>();
        services.TryAddSingleton<PrometheusMetrics>();
        services.TryAddSingleton<ServerMetrics>();
        services.TryAddSingleton<SessionCounts>();
        services.TryAddSingleton<Holdfast.Server.Streaming.GenerationStream>();
        services.AddOptions<Holdfast.Bots.BotOptions>().PostConfigure<IOptions<ServerOptions>, IConfiguration>((bots, server, configuration) =>
        {
            // Pairing links point at this server unless Bots:PublicBaseUrl says otherwise.
            if (string.IsNullOrEmpty(configuration[$"{Holdfast.Bots.BotOptions.SectionName}:{nameof(Holdfast.Bots.BotOptions.PublicBaseUrl)}"]))
            {
                var url = server.Value.PublicUrl ?? server.Value.UrlList().FirstOrDefault(u => Uri.TryCreate(u, UriKind.Absolute, out var uri) && uri.Port != 0);
                if (url is not null)
                {
                    bots.PublicBaseUrl = url;
                }
            }
        });
        services.Configure<JsonOptions>(options =>
        {
            HoldfastJson.Configure(options.SerializerOptions);
            options.SerializerOptions.UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow;
            options.SerializerOptions.AllowDuplicateProperties = false;
        });
        services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);
        services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            var status = context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode;
            context.ProblemDetails.Detail ??= ProblemResults.DescribeStatus(status);
            if (context.HttpContext.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal))
            {
                // OpenAI SDKs look for {"error": {...}}; the problem keeps its own fields too.
                context.ProblemDetails.Extensions["error"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["message"] = context.ProblemDetails.Detail,
                    ["type"] = status >= 500 ? "server_error" : "invalid_request_error",
                    ["code"] = null,
                };
            }
        });
        services.AddOpenApi();
        services.AddHoldfastAuthentication();
        services.AddHoldfastDashboard();
        services.AddAuthorizationBuilder()
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build())
            .AddPolicy(AdminPolicy, policy => policy.RequireAuthenticatedUser().RequireRole("admin"));
        services.AddRateLimiter(options =>
        {
            options.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
            {
                var partition = ApiKeyAuthenticationHandler.RateLimitPartition(context);
                if (partition == "local")
                {
                    return RateLimitPartition.GetNoLimiter(partition);
                }

                var limits = context.RequestServices.GetRequiredService<IOptions<ServerOptions>>().Value;
                return RateLimitPartition.GetTokenBucketLimiter(partition, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = Math.Max(1, limits.RateLimitBurst),
                    TokensPerPeriod = Math.Max(1, limits.RateLimitPerSecond),
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            options.OnRejected = async (rejected, _) =>
            {
                var context = rejected.HttpContext;
                Log.RateLimited(
                    context.RequestServices.GetRequiredService<ILogger<ServerStartup>>(),
                    ApiKeyAuthenticationHandler.RateLimitPartition(context),
                    context.Request.Method,
                    context.Request.Path);
                context.Response.Headers.RetryAfter = "1";
                await ProblemResults.WriteAsync(context, StatusCodes.Status429TooManyRequests, "Too many requests", "This API key sent more requests than its rate limit allows; wait a second and retry.");
            };
        });
        services.Configure<HostOptions>(options => options.ShutdownTimeout = TimeSpan.FromSeconds(20));
        return services;
    }

    /// <summary>Configuration key of the default generation backend (<c>holdfast serve --backend</c>).</summary>
    public const string DefaultBackendKey = "Generation:DefaultBackend";

    /// <summary>Authorization policy of admin-only endpoints.</summary>
    public const string AdminPolicy = "holdfast-admin";

    internal static string ResolveSocketPath(ServerOptions options, IConfiguration configuration)
    {
        if (!string.IsNullOrWhiteSpace(options.SocketPath))
        {
            return Path.GetFullPath(options.SocketPath);
        }

        return Path.Combine(HoldfastConfiguration.ResolveDataDirectory(configuration), "holdfast.sock");
    }

    internal static (IPAddress Address, int Port) ParseUrl(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !string.Equals(uri.Scheme, "http", StringComparison.OrdinalIgnoreCase))
        {
            throw new ServerStartupException($"'{url}' is not a valid listen address; use http://HOST:PORT, e.g. {ServerOptions.DefaultUrl}.");
        }

        var host = uri.Host.Trim('[', ']');
        var address = string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
            : IPAddress.TryParse(host, out var parsed) ? parsed
            : throw new ServerStartupException($"'{url}': the host must be an IP address or 'localhost'.");
        return (address, uri.Port);
    }
}

/// <summary>Registered once by <see cref="HoldfastServer.AddHoldfastServer"/>, so a second call can tell.</summary>
internal sealed class HoldfastServerMarker;

/// <summary>Prepares the data directory before the host starts, and finishes the socket once Kestrel listens.</summary>
internal sealed class ServerStartup(
    IOptions<ServerOptions> serverOptions,
    IOptions<StorageOptions> storageOptions,
    IConfiguration configuration,
    SqliteDatabase database,
    ILogger<ServerStartup> logger) : IDisposable
{
    private DataDirectoryLock? _lock;

    public string DataDirectory => storageOptions.Value.ResolveDataDirectory();

    public string? SocketPath => serverOptions.Value.UnixSocket ? HoldfastServer.ResolveSocketPath(serverOptions.Value, configuration) : null;

    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        foreach (var url in serverOptions.Value.UrlList())
        {
            var (address, _) = HoldfastServer.ParseUrl(url);
            if (!IPAddress.IsLoopback(address))
            {
                Log.NonLoopbackAddress(logger, url);
            }
        }

        HoldfastPaths.EnsureDirectory(DataDirectory);
        try
        {
            _lock = DataDirectoryLock.Acquire(DataDirectory, "holdfast serve");
        }
        catch (DataDirectoryInUseException ex)
        {
            throw new ServerStartupException(
                $"Another Holdfast server is already running on this data directory: {ex.Message} Stop it first, or point this one at another directory with HOLDFAST_DATA.",
                ex);
        }

        if (!OperatingSystem.IsWindows()
            && (File.GetUnixFileMode(DataDirectory) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute)) != UnixFileMode.None)
        {
            // A data directory Holdfast creates is owner-only (0700); one made by someone else may not be. The socket
            // is 0600 before it listens either way (UnixSocketBinding), but the database file follows the umask.
            Log.DataDirectoryShared(logger, DataDirectory, Convert.ToString((int)File.GetUnixFileMode(DataDirectory), 8));
        }

        if (SocketPath is { } socket && File.Exists(socket))
        {
            // The lock is ours, so no live server owns this socket: a crashed one left it behind.
            File.Delete(socket);
            Log.StaleSocketRemoved(logger, socket);
        }

        if (storageOptions.Value.MigrateOnStart)
        {
            var applied = await database.MigrateAsync(cancellationToken);
            if (applied.Count > 0)
            {
                Log.MigrationsApplied(logger, applied.Count, string.Join(", ", applied.Select(m => m.Id)));
            }
        }
        else
        {
            var status = await database.GetMigrationStatusAsync(cancellationToken);
            SqliteDatabase.ThrowOnProblems(status);
            if (status.Pending.Count > 0)
            {
                throw new ServerStartupException(
                    $"The database has {status.Pending.Count} pending migration(s) ({string.Join(", ", status.Pending.Select(m => m.Id))}) and Storage:MigrateOnStart is off; run 'holdfast migrate' first.");
            }
        }
    }

    public void OnListening(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        Log.Listening(logger, string.Join(", ", addresses), DataDirectory);
    }

    public void Dispose() => _lock?.Dispose();
}
