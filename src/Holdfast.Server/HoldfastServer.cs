using System.Net;
using System.Threading.RateLimiting;
using Holdfast.Client.Models;
using Holdfast.Hosting;
using Holdfast.Security;
using Holdfast.Server.Dashboard;
using Holdfast.Server.Endpoints;
using Holdfast.Sessions;
using Holdfast.Server.Errors;
using Holdfast.Server.Hosting;
using Holdfast.Server.Metrics;
using Holdfast.Server.OpenAi;
using Holdfast.Server.Security;
using Holdfast.Storage;
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
        builder.Services.AddHoldfastServer(builder.Configuration);

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
            try
            {
                app.Services.GetService<IStartupValidator>()?.Validate();
            }
            catch (InvalidOperationException ex) when (ex.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
            {
                // A value of the wrong type (Generation:FlushInterval=bogus): a bad setting like any other.
                throw new ServerStartupException($"{ex.Message.TrimEnd('.')}: fix or remove that setting{(ex.InnerException is { } inner ? $" ({inner.Message.TrimEnd('.')})" : string.Empty)}.", ex);
            }

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
        api.MapWebhookApi();
        api.MapClusterApi();
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
    public static IServiceCollection AddHoldfastServer(this IServiceCollection services, IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(HoldfastServerMarker)))
        {
            return services;
        }

        services.AddSingleton<HoldfastServerMarker>();
        services.AddHoldfastStorage(configuration);
        services.AddHoldfastCore();
        services.AddOptions<ServerOptions>().BindConfiguration(ServerOptions.SectionName);
        services.TryAddSingleton<ApiKeys>();
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
                var code = context.ProblemDetails.Extensions.TryGetValue("code", out var own) ? own as string
                    : status == StatusCodes.Status401Unauthorized ? "invalid_api_key"
                    : null;
                context.ProblemDetails.Extensions["error"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["message"] = context.ProblemDetails.Detail,
                    ["type"] = status >= 500 ? "server_error" : "invalid_request_error",
                    ["param"] = code is Holdfast.Sessions.ModelNotFoundException.Code ? "model" : null,
                    ["code"] = code,
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
        return string.IsNullOrWhiteSpace(options.SocketPath)
            ? HoldfastConfiguration.ResolveSocketPath(configuration)
            : Path.GetFullPath(options.SocketPath);
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
    StoreSchema schema,
    IStoreAdministration store,
    IServiceProvider services,
    ILogger<ServerStartup> logger) : IDisposable
{
    private DataDirectoryLock? _lock;
    private IDisposable? _storeHold;

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

        // The store may need holding beyond the data directory (SQLite: the file can live outside it, Storage:SqliteFile,
        // and its own lock keeps two servers with different data directories off it); the provider knows.
        try
        {
            _storeHold = store.HoldForServer("holdfast serve");
        }
        catch (DatabaseInUseException ex)
        {
            throw new ServerStartupException(
                $"Another Holdfast server is already using the database '{ex.DatabasePath}': it is held by {ex.Owner ?? "another process"}. Stop that server first, or give this one another Storage:SqliteFile.",
                ex);
        }

        EnsurePortsFree(serverOptions.Value.UrlList());

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

        if (schema.RetriesUnreachableStore)
        {
            try
            {
                await store.PingAsync(cancellationToken);
            }
            catch (Holdfast.Sessions.StoreUnavailableException ex)
            {
                // A database that is down now may be up in a moment: serve (/readyz 503) and keep trying (StoreSchema).
                // A wrong password or a missing database is not retried: PingAsync throws StoreConfigurationException.
                Log.StoreUnreachableAtStart(logger, store.Location, ex.Message);
                return;
            }
        }

        await CheckIntegrityAsync(cancellationToken);
        try
        {
            // The schema is brought up to date once per start (StoreSchema); the hosted storage service awaits the same run.
            var applied = await schema.EnsureAsync(cancellationToken);
            if (applied.Count > 0)
            {
                Log.MigrationsApplied(logger, applied.Count, string.Join(", ", applied.Select(m => m.Id)));
            }

            // A write at start: a disk that is already full refuses start-up here, in one line, rather than failing
            // the first request (or the restore of running sessions) later.
            if (await store.CheckWritableAsync(cancellationToken) is { } failure)
            {
                throw new StoreUnavailableException(failure);
            }

            // Every node of one database encrypts bot login state with the same key: the first start stores the key's
            // fingerprint, a node with another key refuses to start here, in one line naming Bots:AuthStateKey.
            await services.GetRequiredService<Holdfast.Bots.BotManager>().EnsureAuthKeyMatchesStoreAsync(cancellationToken);
        }
        catch (StoreUnavailableException ex) when (store.WriteFailure is not null)
        {
            var failure = store.WriteFailure.Replace(" Nothing was changed; retry once there is space.", " Free some space, then start again.", StringComparison.Ordinal);
            throw new ServerStartupException($"Cannot start: {char.ToLowerInvariant(failure[0])}{failure[1..]}", ex);
        }
    }

    /// <summary>
    /// The store's quick integrity check (<see cref="StoreCheckDepth.Quick"/>: SQLite <c>PRAGMA quick_check</c>,
    /// PostgreSQL one row of every table) within <see cref="StorageOptions.StartupCheckTimeout"/>. A damaged store
    /// refuses start-up with one line naming it and the way out; a check that takes longer is skipped with a warning.
    /// </summary>
    private async Task CheckIntegrityAsync(CancellationToken cancellationToken)
    {
        var limit = storageOptions.Value.StartupCheckTimeout;
        if (limit <= TimeSpan.Zero)
        {
            return;
        }

        var check = await store.CheckIntegrityAsync(StoreCheckDepth.Quick, limit, cancellationToken);
        if (check.Integrity == StoreIntegrity.Unfinished)
        {
            Log.StartupCheckSkipped(logger, check.Location, limit.TotalMilliseconds);
        }
        else if (check.Integrity == StoreIntegrity.Damaged)
        {
            var wayOut = store.SupportsOnlineBackup
                ? "then put a backup in its place with `holdfast restore FILE` (the damaged file is kept as a .bak)."
                : "then repair it with the server's own tools, or import an export into a new database (`holdfast import FILE --store …`).";
            throw new ServerStartupException(
                $"The database '{check.Location}' is damaged ({string.Join(' ', check.Problems[0].Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))}); refusing to start. " +
                "See the damage with `holdfast check`, " + wayOut);
        }
    }

    /// <summary>
    /// A port another program listens on is refused here with one sentence naming it, before the host starts (where
    /// Kestrel's bind failure would be logged with its stack trace).
    /// </summary>
    private static void EnsurePortsFree(IEnumerable<string> urls)
    {
        foreach (var url in urls)
        {
            var (address, port) = HoldfastServer.ParseUrl(url);
            if (port == 0)
            {
                continue;
            }

            using var probe = new System.Net.Sockets.Socket(address.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            try
            {
                probe.Bind(new IPEndPoint(address, port));
                probe.Listen();
            }
            catch (System.Net.Sockets.SocketException ex) when (ex.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse)
            {
                throw new ServerStartupException(
                    $"Port {port} on {address} is already in use (another program, or another Holdfast server, listens there); pick another port with --urls (Server:Urls).",
                    ex);
            }
            catch (System.Net.Sockets.SocketException ex) when (ex.SocketErrorCode is System.Net.Sockets.SocketError.AccessDenied or System.Net.Sockets.SocketError.AddressNotAvailable)
            {
                throw new ServerStartupException(
                    $"Cannot listen on {address} port {port}: {ex.Message.TrimEnd('.')}; pick another address or port with --urls (Server:Urls).",
                    ex);
            }
        }
    }

    public void OnListening(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        Log.Listening(logger, string.Join(", ", addresses), DataDirectory);
    }

    public void Dispose()
    {
        _storeHold?.Dispose();
        _lock?.Dispose();
    }
}
