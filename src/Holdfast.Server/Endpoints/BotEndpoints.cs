using System.Text.Json;
using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Client.Models;
using Holdfast.Security;
using Holdfast.Server.Errors;
using Holdfast.Server.Security;
using Holdfast.Sessions;
using Holdfast.Webhooks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using static Holdfast.Server.Endpoints.EndpointHelpers;

namespace Holdfast.Server.Endpoints;

/// <summary>
/// <c>/api/v1/bots</c>: bot sessions (start, list, get, QR, end, audit) and the bridge endpoints a bot runtime
/// elsewhere reports through. Another user's bot answers 404 on every endpoint; admins see all.
/// </summary>
internal static class BotEndpoints
{
    public static RouteGroupBuilder MapBotApi(this IEndpointRouteBuilder api)
    {
        var bots = api.MapGroup("/bots").WithTags("Bots");
        bots.MapPost("/", StartAsync).WithSummary("Starts a bot session: creates it, reactivates it, or returns it when already active.");
        bots.MapGet("/", ListAsync).WithSummary("Bot sessions of the caller (admins: all), by id, paged.");
        bots.MapGet("/{id}", GetAsync).WithSummary("One bot session.");
        bots.MapGet("/{id}/qr", QrAsync).WithSummary("The current QR code as PNG, SVG or terminal text; ?after_seq=N&wait=S waits for a newer one (204: none came); 410 when it expired.");
        bots.MapPost("/{id}/end", EndAsync).WithSummary("Ends the session: inactive, QR cleared.");
        bots.MapGet("/{id}/events", EventsAsync).WithSummary("Audit trail, newest first.");
        bots.MapGet("/{id}/webhook-deliveries", WebhookDeliveriesAsync)
            .WithSummary("The newest webhook deliveries about this session, across its owner's subscriptions, newest first: event, status, attempts, last answer; ?limit=N (default 20).");
        bots.MapPost("/{id}/owner", AssignOwnerAsync).RequireAuthorization(HoldfastServer.AdminPolicy)
            .WithSummary("Admins: gives the session to a user (e.g. one created through the library without an owner); audited.");

        // Bridge: a bot runtime elsewhere reports what happens to the session.
        bots.MapPost("/{id}/qr", ReportQrAsync).WithSummary("Bridge: the runtime has a new QR payload.");
        bots.MapPost("/{id}/messages", ReportMessageAsync).WithSummary("Bridge: the bot received a message.");
        bots.MapPost("/{id}/connection", ReportConnectionAsync).WithSummary("Bridge: the runtime's connection state changed.");
        bots.MapPut("/{id}/auth-state", SaveAuthStateAsync).WithSummary("Bridge: store the runtime's login state (octet-stream, encrypted at rest).");
        bots.MapGet("/{id}/auth-keys", ReadAuthKeysAsync).WithSummary("Bridge: per-key login state, ?type=T&ids=a,b: {\"T\": {\"a\": value}} with the stored ones.");
        bots.MapPost("/{id}/auth-keys", WriteAuthKeysAsync).WithSummary("Bridge: store per-key login state, {\"T\": {\"id\": value-or-null}} (null deletes), in one transaction.");
        bots.MapGet("/{id}/commands", CommandsAsync).WithSummary("Bridge: Server-Sent Events telling the runtime what the server decided ('start', 'end'); resumes with Last-Event-ID.");
        bots.MapGet("/{id}/auth-state", LoadAuthStateAsync).WithSummary("Bridge: read the runtime's login state back (404 when none).");
        return bots;
    }

    private static async Task<Results<Created<Bot>, Ok<Bot>>> StartAsync(
        StartBotRequest request,
        HttpContext context,
        BotManager manager,
        CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var id = ValidId(request.SessionId, "session_id");
        var botType = request.BotType ?? WebBotConnector.TypeName;
        if (!manager.BotTypes.Contains(botType, StringComparer.Ordinal))
        {
            throw new InvalidSessionInputException("bot_type", $"Unknown bot type '{Shorten(botType)}'; this server knows: {string.Join(", ", manager.BotTypes.Order(StringComparer.Ordinal))}.");
        }

        // Create cannot hide that an id is taken (it is the primary key), but it tells nothing more: another user's
        // session and one without an owner answer the same 409, and neither is adopted. Admins start any session as
        // it is (its owner unchanged); an owner is given only by POST /api/v1/bots/{id}/owner.
        string? owner = caller.User;
        var existing = await manager.FindAsync(id, cancellationToken);
        if (existing is not null && !string.Equals(existing.Owner, caller.User, StringComparison.Ordinal))
        {
            if (!caller.IsAdmin)
            {
                throw new BotIdUnavailableException(id);
            }

            owner = null;
        }

        var result = await manager.StartSessionAsync(new StartBotSession(id, botType, owner), ActorOf(caller), cancellationToken);
        var bot = ToWire(result.Session);
        return result.Outcome == BotStartOutcome.Created
            ? TypedResults.Created($"/api/v1/bots/{Uri.EscapeDataString(id)}", bot)
            : TypedResults.Ok(bot);
    }

    private static async Task<Ok<ItemPage<Bot>>> ListAsync(
        HttpContext context,
        BotManager manager,
        string? status,
        int? limit,
        string? cursor,
        CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        BotSessionStatus? filter = status switch
        {
            null or "" => null,
            "active" => BotSessionStatus.Active,
            "inactive" => BotSessionStatus.Inactive,
            _ => throw new InvalidSessionInputException("status", "'status' must be 'active' or 'inactive'."),
        };
        if (cursor is not null)
        {
            ValidId(cursor, "cursor");
        }

        var page = await manager.ListAsync(
            new BotListQuery(filter, caller.IsAdmin ? null : caller.User, cursor, ValidLimit(limit)),
            cancellationToken);
        return TypedResults.Ok(new ItemPage<Bot>(page.Items.Select(ToWire).ToList(), page.NextCursor));
    }

    private static async Task<Ok<Bot>> GetAsync(string id, HttpContext context, BotManager manager, CancellationToken cancellationToken) =>
        TypedResults.Ok(ToWire(await FindOwnedAsync(id, context.Caller(), manager, cancellationToken)));

    private static async Task<Results<FileContentHttpResult, ContentHttpResult, ProblemHttpResult, NoContent>> QrAsync(
        string id,
        string? format,
        [Microsoft.AspNetCore.Mvc.FromQuery(Name = "after_seq")] long? afterSeq,
        double? wait,
        HttpContext context,
        BotManager manager,
        Microsoft.Extensions.Options.IOptions<BotOptions> options,
        Storage.IChangeSignals signals,
        CancellationToken cancellationToken)
    {
        var bot = await FindOwnedAsync(id, context.Caller(), manager, cancellationToken);
        var kind = format ?? "png";
        if (kind is not ("png" or "svg" or "text"))
        {
            throw new InvalidSessionInputException("format", "'format' must be png, svg or text.");
        }

        ValidSeq(afterSeq, "after_seq");
        if (wait is { } w && (double.IsNaN(w) || w < 0 || w > 60))
        {
            throw new InvalidSessionInputException("wait", "'wait' is in seconds, from 0 to 60.");
        }

        if (afterSeq is { } after)
        {
            // Long poll: a QR newer than after_seq, waiting up to `wait` seconds (25 by default) for one. It wakes on
            // the session's change signal (a QR stored on any node: LISTEN/NOTIFY on PostgreSQL), never on a timer:
            // subscribe, re-read, wait, re-read.
            using var changes = signals.Subscribe(BotSignals.Session(bot.SessionId));
            using var waitLimit = new CancellationTokenSource(TimeSpan.FromSeconds(wait ?? 25), manager.Time);
            using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, waitLimit.Token);
            bot = await manager.GetAsync(bot.SessionId, cancellationToken);
            while (bot.QrData is null || bot.QrSeq <= after)
            {
                try
                {
                    await changes.WaitAsync(waiting.Token);
                }
                catch (OperationCanceledException) when (waitLimit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    return TypedResults.NoContent();
                }

                bot = await manager.GetAsync(bot.SessionId, cancellationToken);
            }
        }

        if (bot.QrData is null)
        {
            return ProblemResults.NotFound($"Bot session '{bot.SessionId}' has no QR code now: it is paired, ended, or its runtime has not reported one yet.");
        }

        var lifetime = options.Value.QrLifetime;
        context.Response.Headers["X-Qr-Seq"] = bot.QrSeq.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (BotQrCodes.IsExpired(bot, manager.Time.GetUtcNow(), manager.StartedAt, lifetime))
        {
            return ProblemResults.Problem(
                StatusCodes.Status410Gone,
                "QR code expired",
                $"QR code {bot.QrSeq} of bot session '{bot.SessionId}' has expired; wait for a newer one with ?after_seq={bot.QrSeq}.");
        }

        context.Response.Headers["X-Qr-Expires-At"] = BotQrCodes.ExpiresAt(bot, lifetime)!.Value.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        return kind switch
        {
            "svg" => TypedResults.Text(BotQrCodes.RenderSvg(bot.QrData), "image/svg+xml"),
            "text" => TypedResults.Text(BotQrCodes.RenderText(bot.QrData), "text/plain; charset=utf-8"),
            _ => TypedResults.File(BotQrCodes.RenderPng(bot.QrData), "image/png"),
        };
    }

    private static async Task<Ok<Bot>> EndAsync(string id, HttpContext context, BotManager manager, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var bot = await FindOwnedAsync(id, caller, manager, cancellationToken);
        return TypedResults.Ok(ToWire(await manager.EndSessionAsync(bot.SessionId, ActorOf(caller), cancellationToken)));
    }

    private static async Task<Ok<Bot>> AssignOwnerAsync(string id, BotOwnerAssignment request, HttpContext context, BotManager manager, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        ValidId(id);
        var owner = ValidId(request.Owner, "owner");
        return TypedResults.Ok(ToWire(await manager.AssignOwnerAsync(id, owner, ActorOf(caller), cancellationToken)));
    }

    private static async Task<Ok<Client.Models.AuditPage>> EventsAsync(
        string id,
        long? before,
        int? limit,
        HttpContext context,
        BotManager manager,
        IAuditLog audit,
        CancellationToken cancellationToken)
    {
        var bot = await FindOwnedAsync(id, context.Caller(), manager, cancellationToken);
        var page = await audit.ReadAuditAsync(SessionKind.Bot, bot.SessionId, ValidSeq(before, "before"), ValidLimit(limit, 1000, 100), cancellationToken);
        return TypedResults.Ok(EndpointHelpers.ToWire(page));
    }

    private static async Task<Ok<ItemPage<WebhookDeliveryInfo>>> WebhookDeliveriesAsync(
        string id,
        int? limit,
        HttpContext context,
        BotManager manager,
        WebhookSubscriptions webhooks,
        CancellationToken cancellationToken)
    {
        var bot = await FindOwnedAsync(id, context.Caller(), manager, cancellationToken);
        var items = await webhooks.SessionDeliveriesAsync(bot.Owner, SessionKind.Bot, bot.SessionId, ValidLimit(limit, 200, 20), cancellationToken);
        return TypedResults.Ok(new ItemPage<WebhookDeliveryInfo>(items.Select(WebhookEndpoints.ToWire).ToList(), null));
    }

    private static async Task<Ok<Bot>> ReportQrAsync(string id, BotQrUpdate request, HttpContext context, BotManager manager, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var bot = await FindOwnedAsync(id, caller, manager, cancellationToken);
        return TypedResults.Ok(ToWire(await manager.UpdateQrAsync(bot.SessionId, request.QrData, ActorOf(caller), cancellationToken)));
    }

    private static async Task<Ok<Bot>> ReportMessageAsync(string id, BotMessage request, HttpContext context, BotManager manager, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var bot = await FindOwnedAsync(id, caller, manager, cancellationToken);
        if (request.Text is null)
        {
            throw new InvalidSessionInputException("text", "'text' is required.");
        }

        return TypedResults.Ok(ToWire(await manager.RecordMessageAsync(bot.SessionId, request.Text, request.ReceivedAt, ActorOf(caller), cancellationToken)));
    }

    private static async Task<Ok<Bot>> ReportConnectionAsync(string id, BotConnectionUpdate request, HttpContext context, BotManager manager, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var bot = await FindOwnedAsync(id, caller, manager, cancellationToken);
        var state = BotManager.ParseConnectionState(request.State);
        return TypedResults.Ok(ToWire(await manager.ReportConnectionAsync(bot.SessionId, state, request.Reason ?? request.Detail, request.Code, ActorOf(caller), cancellationToken)));
    }

    private static async Task<NoContent> SaveAuthStateAsync(string id, HttpContext context, BotManager manager, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var bot = await FindOwnedAsync(id, caller, manager, cancellationToken);
        if (context.Request.ContentType is not { } type || !type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase))
        {
            throw new BadHttpRequestException("Send the auth state as 'Content-Type: application/octet-stream'.", StatusCodes.Status415UnsupportedMediaType);
        }

        // Login state may be up to the bot limit (1 MiB) plus a little; the global JSON limit may be smaller.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = BotLimits.MaxAuthStateBytes + 1;
        }

        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, cancellationToken);
        if (buffer.Length > BotLimits.MaxAuthStateBytes)
        {
            throw new InvalidSessionInputException("auth_state", $"The auth state is larger than the limit of {BotLimits.MaxAuthStateBytes} bytes (1 MiB).");
        }

        // An empty body clears the state. Not a conditional expression: its null would convert to an empty
        // ReadOnlyMemory<byte> (through byte[]) and be stored as an empty state.
        ReadOnlyMemory<byte>? state = null;
        if (buffer.Length > 0)
        {
            state = buffer.ToArray();
        }

        await manager.SaveAuthStateAsync(bot.SessionId, state, ActorOf(caller), cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Results<FileContentHttpResult, ProblemHttpResult>> LoadAuthStateAsync(string id, HttpContext context, BotManager manager, CancellationToken cancellationToken)
    {
        var bot = await FindOwnedAsync(id, context.Caller(), manager, cancellationToken);
        var state = await manager.LoadAuthStateAsync(bot.SessionId, cancellationToken);
        return state is null
            ? ProblemResults.NotFound($"Bot session '{bot.SessionId}' has no stored auth state.")
            : TypedResults.File(state, "application/octet-stream");
    }

    private static async Task<Ok<Dictionary<string, Dictionary<string, JsonElement>>>> ReadAuthKeysAsync(
        string id,
        string? type,
        string? ids,
        HttpContext context,
        BotManager manager,
        CancellationToken cancellationToken)
    {
        var bot = await FindOwnedAsync(id, context.Caller(), manager, cancellationToken);
        if (string.IsNullOrEmpty(type))
        {
            throw new InvalidSessionInputException("type", "'type' is required, e.g. ?type=pre-key&ids=1,2.");
        }

        var keyIds = (ids ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries);
        var values = await manager.ReadAuthKeysAsync(bot.SessionId, type, keyIds, cancellationToken);
        var found = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (keyId, value) in values)
        {
            using var document = JsonDocument.Parse(value);
            found[keyId] = document.RootElement.Clone();
        }

        return TypedResults.Ok(new Dictionary<string, Dictionary<string, JsonElement>>(StringComparer.Ordinal) { [type] = found });
    }

    private static async Task<NoContent> WriteAuthKeysAsync(
        string id,
        Dictionary<string, Dictionary<string, JsonElement>> request,
        HttpContext context,
        BotManager manager,
        CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var bot = await FindOwnedAsync(id, caller, manager, cancellationToken);
        var changes = new List<BotAuthKeyChange>();
        foreach (var (type, keys) in request)
        {
            foreach (var (keyId, value) in keys ?? [])
            {
                changes.Add(new BotAuthKeyChange(
                    type,
                    keyId,
                    value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined ? null : System.Text.Encoding.UTF8.GetBytes(value.GetRawText())));
            }
        }

        await manager.WriteAuthKeysAsync(bot.SessionId, changes, ActorOf(caller), cancellationToken);
        return TypedResults.NoContent();
    }

    /// <summary>
    /// Streams the session's commands: <c>event: command</c> with <c>{"command", "session_id", "version"}</c> and
    /// <c>id:</c> the session's version after the change. A session that is already ended when the stream opens gets
    /// its <c>end</c> at once unless <c>Last-Event-ID</c> shows the runtime has seen it, so an end that happened while
    /// the runtime was away is not lost. A <c>: heartbeat</c> comment is sent when idle.
    /// </summary>
    private static async Task CommandsAsync(
        string id,
        HttpContext context,
        BotManager manager,
        Storage.IChangeSignals signals,
        Microsoft.Extensions.Options.IOptions<Hosting.ServerOptions> options,
        Microsoft.Extensions.Hosting.IHostApplicationLifetime lifetime,
        CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var bot = await FindOwnedAsync(id, caller, manager, cancellationToken);
        long? seen = null;
        if (context.Request.Headers["Last-Event-ID"] is { Count: > 0 } lastEventId)
        {
            seen = long.TryParse(lastEventId[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
                ? value
                : throw new InvalidSessionInputException("Last-Event-ID", "'Last-Event-ID' must be the id of the last command received.");
        }

        // Listen before reading the state again, so a change between the two is not missed. The signal is published
        // by the bridge connector of whichever node started, restored or ended the session (LISTEN/NOTIFY on
        // PostgreSQL); it is a hint: the command sent is what the re-read session says (active: start, ended: end).
        using var commands = signals.Subscribe(BotSignals.Commands(bot.SessionId));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        var token = stop.Token;
        var sse = new Streaming.SseWriter(context.Response);
        await sse.StartAsync(token);
        try
        {
            var current = await manager.GetAsync(bot.SessionId, token);
            var endSent = seen;
            if (current.Status == BotSessionStatus.Inactive && (seen is null || current.Version > seen))
            {
                await WriteCommandAsync(sse, BridgeBotConnector.EndCommand, current, token);
                endSent = current.Version;
            }

            var heartbeat = options.Value.HeartbeatInterval;
            while (true)
            {
                using (var idle = CancellationTokenSource.CreateLinkedTokenSource(token))
                {
                    idle.CancelAfter(heartbeat);
                    try
                    {
                        await commands.WaitAsync(idle.Token);
                    }
                    catch (OperationCanceledException) when (!token.IsCancellationRequested)
                    {
                        await sse.HeartbeatAsync(token);
                        continue;
                    }
                }

                current = await manager.GetAsync(bot.SessionId, token);
                if (current.Status == BotSessionStatus.Active)
                {
                    await WriteCommandAsync(sse, BridgeBotConnector.StartCommand, current, token);
                }
                else if (endSent is null || current.Version > endSent)
                {
                    await WriteCommandAsync(sse, BridgeBotConnector.EndCommand, current, token);
                    endSent = current.Version;
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The runtime left or the server is stopping: the runtime reconnects with Last-Event-ID.
        }
    }

    private static async Task WriteCommandAsync(Streaming.SseWriter sse, string command, BotSession session, CancellationToken cancellationToken)
    {
        await sse.WriteEventAsync("command", new BotCommand(command, session.SessionId, session.Version), session.Version, cancellationToken);
        await sse.FlushAsync(cancellationToken);
    }

    /// <summary>The bot when the caller may see it; otherwise not found (another user's bot is indistinguishable from none).</summary>
    internal static async Task<BotSession> FindOwnedAsync(string id, Principal caller, BotManager manager, CancellationToken cancellationToken)
    {
        ValidId(id);
        var bot = await manager.FindAsync(id, cancellationToken);
        if (bot is null || (!caller.IsAdmin && !string.Equals(bot.Owner, caller.User, StringComparison.Ordinal)))
        {
            throw new SessionNotFoundException(SessionKind.Bot, id);
        }

        return bot;
    }

    internal static Bot ToWire(BotSession bot) => new(
        bot.SessionId,
        bot.CreatedAt,
        bot.LastMessage,
        bot.Status == BotSessionStatus.Active ? BotStatus.Active : BotStatus.Inactive,
        bot.QrData,
        bot.UpdatedAt,
        bot.BotType,
        bot.Owner,
        bot.ConnectionDetail,
        bot.Version,
        bot.Connection is { } c ? new BotConnectionInfo(c.State.ToWire(), c.Reason, c.Code, c.At) : null,
        bot.QrSeq,
        bot.QrAttempts)
    {
        Holder = bot.Holder is { } holder ? new SessionHolder(holder.NodeId, holder.Epoch, holder.LeaseExpiresAt) : null,
    };

    private static string Shorten(string value) => value.Length <= 40 ? value : value[..40] + "…";
}
