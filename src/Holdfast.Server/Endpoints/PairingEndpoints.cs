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
/// </summary>
internal static class PairingEndpoints
{
    /// <summary>Header that carries the paired browser's device key.</summary>
    public const string DeviceKeyHeader = "X-Holdfast-Device-Key";

    public static IEndpointRouteBuilder MapPairingPages(this IEndpointRouteBuilder app)
    {
        var pair = app.MapGroup("/pair").AllowAnonymous().WithTags("Web bot pairing");
        pair.MapGet("/{id}", Page).WithSummary("The chat page a web bot's QR code opens.");
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

    private static ContentHttpResult Page(string id, HttpContext context)
    {
        EndpointHelpers.ValidId(id);
        context.Response.Headers.ContentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers["Referrer-Policy"] = "no-referrer";
        var html = PageTemplate
            .Replace("{{TITLE}}", HtmlEncoder.Default.Encode(id), StringComparison.Ordinal)
            .Replace("{{ID_JSON}}", JsonSerializer.Serialize(id, PageJson), StringComparison.Ordinal);
        return TypedResults.Text(html, "text/html; charset=utf-8");
    }

    private static async Task<Ok<PairResponse>> PairAsync(string id, PairRequest request, BotManager manager, CancellationToken cancellationToken)
    {
        EndpointHelpers.ValidId(id);
        var session = await manager.FindAsync(id, cancellationToken);
        if (session is null || session.BotType != WebBotConnector.TypeName)
        {
            throw new SessionNotFoundException(SessionKind.Bot, id);
        }

        var key = await manager.PairWebDeviceAsync(id, request.Token, Actor.System("connector:web", "paired from the pairing page"), cancellationToken);
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
