using System.Globalization;
using System.Text;
using System.Text.Json;
using Holdfast.Client.Models;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Holdfast.Server.Streaming;

/// <summary>Writes Server-Sent Events to a response: headers once, then events and heartbeat comments.</summary>
internal sealed class SseWriter(HttpResponse response)
{
    private readonly Stream _body = response.Body;

    /// <summary>Sends the SSE headers (no buffering, no caching) and a retry hint; completes when they are on the wire.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache, no-store";
        response.Headers["X-Accel-Buffering"] = "no";
        response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await WriteRawAsync("retry: 1000\n\n", cancellationToken);
        await FlushAsync(cancellationToken);
    }

    /// <summary>Queues one event (flush to send).</summary>
    public Task WriteEventAsync<T>(string eventName, T data, long? id, CancellationToken cancellationToken, JsonSerializerOptions? options = null)
    {
        var text = new StringBuilder();
        if (id is { } value)
        {
            text.Append("id: ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        if (eventName.Length > 0)
        {
            text.Append("event: ").Append(eventName).Append('\n');
        }

        // Compact JSON never contains a raw newline, so one data line carries it.
        text.Append("data: ").Append(JsonSerializer.Serialize(data, options ?? HoldfastJson.Options)).Append("\n\n");
        return WriteRawAsync(text.ToString(), cancellationToken);
    }

    /// <summary>Queues a raw <c>data:</c> line (e.g. <c>[DONE]</c>).</summary>
    public Task WriteDataAsync(string data, CancellationToken cancellationToken) => WriteRawAsync("data: " + data + "\n\n", cancellationToken);

    /// <summary>Sends a <c>: heartbeat</c> comment at once.</summary>
    public async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        await WriteRawAsync(": heartbeat\n\n", cancellationToken);
        await FlushAsync(cancellationToken);
    }

    public Task FlushAsync(CancellationToken cancellationToken) => _body.FlushAsync(cancellationToken);

    private Task WriteRawAsync(string text, CancellationToken cancellationToken) =>
        _body.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken).AsTask();
}
