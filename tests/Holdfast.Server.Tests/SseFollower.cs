using System.Net;
using System.Text;
using System.Text.Json;
using Holdfast.Client.Models;

namespace Holdfast.Server.Tests;

/// <summary>One parsed Server-Sent Event.</summary>
public sealed record SseEvent(string? Id, string Event, string Data);

/// <summary>
/// A test reader of a generation's SSE stream that behaves like a browser EventSource: it reconnects after a
/// dropped connection (or a refused one, while the server restarts) with <c>Last-Event-ID</c>, until <c>done</c>.
/// It records every chunk it got, so a test can check the text is complete, gapless and duplicate-free.
/// </summary>
public sealed class SseFollower(Func<HttpClient> clientFactory, string path)
{
    public List<StreamChunk> Chunks { get; } = [];

    public List<long> Seqs { get; } = [];

    public int Connections { get; private set; }

    public StreamDone? Done { get; private set; }

    public int Heartbeats { get; private set; }

    public string Text => string.Concat(Chunks.Select(c => c.Text));

    /// <summary>Follows until <c>done</c>; <paramref name="onChunk"/> runs after each chunk.</summary>
    public async Task RunAsync(long? startAfter = null, Func<StreamChunk, Task>? onChunk = null, CancellationToken cancellationToken = default)
    {
        string? lastId = null;
        while (Done is null)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                using var client = clientFactory();
                using var request = new HttpRequestMessage(HttpMethod.Get, startAfter is { } a && lastId is null ? $"{path}?after={a}" : path);
                if (lastId is not null)
                {
                    request.Headers.Add("Last-Event-ID", lastId);
                }

                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    throw new InvalidOperationException($"stream answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
                }

                Connections++;
                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                await foreach (var e in ReadEventsAsync(body, cancellationToken))
                {
                    if (e.Id is not null)
                    {
                        lastId = e.Id;
                    }

                    switch (e.Event)
                    {
                        case "chunk":
                            var chunk = JsonSerializer.Deserialize<StreamChunk>(e.Data, HoldfastJson.Options)!;
                            Seqs.Add(chunk.Seq);
                            Chunks.Add(chunk);
                            if (onChunk is not null)
                            {
                                await onChunk(chunk);
                            }

                            break;
                        case "status":
                            Seqs.Add(JsonSerializer.Deserialize<StreamStatus>(e.Data, HoldfastJson.Options)!.Seq);
                            break;
                        case "done":
                            Done = JsonSerializer.Deserialize<StreamDone>(e.Data, HoldfastJson.Options);
                            return;
                        case "heartbeat":
                            Heartbeats++;
                            break;
                    }
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
            {
                // Dropped or refused (server restarting): wait a moment and reconnect from the last id.
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
        }
    }

    /// <summary>Parses an SSE body into events; comments (": heartbeat") are reported as event "heartbeat".</summary>
    public static async IAsyncEnumerable<SseEvent> ReadEventsAsync(Stream body, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var reader = new StreamReader(body, Encoding.UTF8);
        string? id = null;
        string name = "message";
        var data = new StringBuilder();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                if (data.Length > 0)
                {
                    yield return new SseEvent(id, name, data.ToString());
                }

                id = null;
                name = "message";
                data.Clear();
                continue;
            }

            if (line.StartsWith(':'))
            {
                if (line.Contains("heartbeat", StringComparison.Ordinal))
                {
                    yield return new SseEvent(null, "heartbeat", string.Empty);
                }

                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? string.Empty : line[(colon + 1)..].TrimStart(' ');
            switch (field)
            {
                case "id":
                    id = value;
                    break;
                case "event":
                    name = value;
                    break;
                case "data":
                    if (data.Length > 0)
                    {
                        data.Append('\n');
                    }

                    data.Append(value);
                    break;
            }
        }
    }

    /// <summary>Asserts the chunks are strictly increasing in seq: no gap in the log order, no duplicate.</summary>
    public void ShouldBeGaplessAndDuplicateFree(long startAfter = 0)
    {
        Seqs.ShouldBe(Seqs.Distinct().Order().ToList(), "events must arrive in seq order, each once");
        if (Seqs.Count > 0)
        {
            Seqs[0].ShouldBe(startAfter + 1, "the first event must follow the requested offset");
            Seqs[^1].ShouldBe(Seqs[0] + Seqs.Count - 1, "no seq may be missing");
        }
    }
}
