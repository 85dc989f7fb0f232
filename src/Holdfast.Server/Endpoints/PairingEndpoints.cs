using System.Text.Encodings.Web;
using System.Text.Json;
using Holdfast.Bots;
using Holdfast.Sessions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Holdfast.Server.Endpoints;

/// <summary>
/// The web bot's pairing page: the QR code of a <c>web</c> session encodes <c>/pair/{id}?token=…</c>; opening it
/// shows a small chat page that pairs this browser as the bot's device (the token is the proof), then sends what
/// the user types as the bot's received messages. No API key: the pairing token and then the device key guard it.
/// Every failure (unknown id, not a web bot, ended, wrong or old token, wrong device key) is the same 404, so these
/// pages tell a stranger nothing about which bot ids exist.
/// </summary>
internal static class PairingEndpoints
{
    /// <summary>Header that carries the paired browser's device key.</summary>
    public const string DeviceKeyHeader = "X-Holdfast-Device-Key";

    public static IEndpointRouteBuilder MapPairingPages(this IEndpointRouteBuilder app)
    {
        var pair = app.MapGroup("/pair").AllowAnonymous().WithTags("Web bot pairing");
        pair.MapGet("/{id}", PageAsync).WithSummary("The chat page a web bot's QR code opens (needs the link's token, or the cookie of the browser paired with it; else 404).");
        pair.MapPost("/{id}/device", PairAsync).WithSummary("Pairs this browser with the session (token from the QR link); answers the device key.");
        pair.MapPost("/{id}/messages", SendAsync).WithSummary("A message from the paired browser: the bot's received message.");
        return app;
    }

    /// <summary>Body of <c>POST /pair/{id}/device</c>.</summary>
    public sealed record PairRequest(string? Token);

    /// <summary>Answer of a pairing: the key the browser keeps to send messages.</summary>
    public sealed record PairResponse(string DeviceKey);

    /// <summary>Body of <c>POST /pair/{id}/messages</c>.</summary>
    public sealed record PageMessage(string? Text);

    /// <summary>Cookie (scoped to the session's own <c>/pair/{id}</c> path) that lets a paired browser open its page again.</summary>
    public const string DeviceCookie = "holdfast_device";

    /// <summary>
    /// The one answer for every pairing link that does not work: unknown id, another bot type, an ended session, a
    /// wrong, old or missing token. A stranger learns nothing about which ids exist.
    /// </summary>
    internal const string LinkNotValid = "This pairing link is not valid (any more): scan the QR code the bot shows now.";

    private static async Task<ContentHttpResult> PageAsync(string id, string? token, HttpContext context, BotManager manager, CancellationToken cancellationToken)
    {
        EndpointHelpers.ValidId(id);
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers["Referrer-Policy"] = "no-referrer";
        var session = await manager.FindAsync(id, cancellationToken);
        var allowed = session is not null
            && (WebBotConnector.VerifyPairingToken(session, token)
                || await manager.VerifyWebDeviceAsync(id, context.Request.Cookies[DeviceCookie], cancellationToken));
        if (!allowed)
        {
            context.Response.Headers.ContentSecurityPolicy = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
            return TypedResults.Text(NotValidPage, "text/html; charset=utf-8", statusCode: StatusCodes.Status404NotFound);
        }

        context.Response.Headers.ContentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        var html = PageTemplate
            .Replace("{{TITLE}}", HtmlEncoder.Default.Encode(id), StringComparison.Ordinal)
            .Replace("{{ID_JSON}}", JsonSerializer.Serialize(id, PageJson), StringComparison.Ordinal);
        return TypedResults.Text(html, "text/html; charset=utf-8");
    }

    private static async Task<Results<Ok<PairResponse>, ProblemHttpResult>> PairAsync(string id, PairRequest request, HttpContext context, BotManager manager, CancellationToken cancellationToken)
    {
        EndpointHelpers.ValidId(id);
        var session = await manager.FindAsync(id, cancellationToken);
        if (session is null || !WebBotConnector.VerifyPairingToken(session, request.Token))
        {
            return Errors.ProblemResults.NotFound(LinkNotValid);
        }

        string key;
        try
        {
            key = await manager.PairWebDeviceAsync(id, request.Token, Actor.System("connector:web", "paired from the pairing page"), cancellationToken);
        }
        catch (InvalidSessionInputException)
        {
            // The QR changed between the check above and the pairing: the same answer as any other stale link.
            return Errors.ProblemResults.NotFound(LinkNotValid);
        }

        context.Response.Cookies.Append(DeviceCookie, key, new CookieOptions
        {
            Path = "/pair/" + Uri.EscapeDataString(id),
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = context.Request.IsHttps,
            MaxAge = TimeSpan.FromDays(400),
        });
        return TypedResults.Ok(new PairResponse(key));
    }

    private static async Task<NoContent> SendAsync(
        string id,
        PageMessage message,
        HttpContext context,
        BotManager manager,
        CancellationToken cancellationToken)
    {
        EndpointHelpers.ValidId(id);
        if (!await manager.VerifyWebDeviceAsync(id, context.Request.Headers[DeviceKeyHeader], cancellationToken))
        {
            // Unknown session, ended session, or not this browser: all look the same.
            throw new SessionNotFoundException(SessionKind.Bot, id);
        }

        if (message.Text is null)
        {
            throw new InvalidSessionInputException("text", "'text' is required.");
        }

        await manager.RecordMessageAsync(id, message.Text, Actor.System("connector:web", "message from the paired browser"), cancellationToken);
        return TypedResults.NoContent();
    }

    private const string NotValidPage = $"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Pairing link not valid</title></head>
        <body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 0 auto; padding: 1rem;">
        <h1>Pairing link not valid</h1><p>{LinkNotValid}</p></body></html>
        """;

    private static readonly JsonSerializerOptions PageJson = new() { Encoder = JavaScriptEncoder.Default };

    private const string PageTemplate = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Holdfast bot {{TITLE}}</title>
        <style>
          body { font-family: system-ui, sans-serif; max-width: 36rem; margin: 0 auto; padding: 1rem; }
          #log { border: 1px solid #ccc; border-radius: .5rem; min-height: 12rem; padding: .5rem; margin: 1rem 0; overflow-y: auto; }
          .me { text-align: right; color: #0b5; } .sys { color: #888; font-size: .9em; }
          form { display: flex; gap: .5rem; } input { flex: 1; padding: .5rem; } button { padding: .5rem 1rem; }
        </style>
        </head>
        <body>
        <h1>Bot {{TITLE}}</h1>
        <p id="state" class="sys">Pairing…</p>
        <div id="log" aria-live="polite"></div>
        <form id="send"><input id="text" autocomplete="off" placeholder="Message" maxlength="4000" disabled><button disabled>Send</button></form>
        <script>
        (() => {
          const id = {{ID_JSON}};
          const base = location.pathname.replace(/\/$/, '');
          const storeKey = 'holdfast-device:' + id;
          const state = document.getElementById('state');
          const log = document.getElementById('log');
          const input = document.getElementById('text');
          const button = document.querySelector('#send button');
          const say = (text, cls) => { const p = document.createElement('p'); p.className = cls; p.textContent = text; log.appendChild(p); };
          const ready = () => { state.textContent = 'Paired: what you send here is received by the bot.'; input.disabled = false; button.disabled = false; input.focus(); };
          async function pair() {
            if (localStorage.getItem(storeKey)) { ready(); return; }
            const token = new URLSearchParams(location.search).get('token');
            const res = await fetch(base + '/device', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token }) });
            if (!res.ok) { const p = await res.json().catch(() => ({})); state.textContent = p.detail || 'This pairing link does not work any more.'; return; }
            const body = await res.json();
            localStorage.setItem(storeKey, body.device_key);
            history.replaceState(null, '', base);
            ready();
          }
          document.getElementById('send').addEventListener('submit', async (e) => {
            e.preventDefault();
            const text = input.value; if (!text) return;
            const res = await fetch(base + '/messages', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Holdfast-Device-Key': localStorage.getItem(storeKey) || '' }, body: JSON.stringify({ text }) });
            if (res.ok) { say(text, 'me'); input.value = ''; }
            else { const p = await res.json().catch(() => ({})); say(p.detail || 'Not sent.', 'sys'); }
          });
          pair();
        })();
        </script>
        </body>
        </html>
        """;
}
