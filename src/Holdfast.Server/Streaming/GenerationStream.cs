using System.Threading.Channels;
using Holdfast.Client.Models;
using Holdfast.Generation;
using Holdfast.Server.Endpoints;
using Holdfast.Server.Hosting;
using Holdfast.Server.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Holdfast.Server.Streaming;

/// <summary>
/// Follows a generation's durable log and relays it as SSE: <c>id:</c> is the log seq, <c>event: chunk</c> /
/// <c>event: status</c>, a final <c>event: done</c>, and a <c>: heartbeat</c> comment when idle. The runner fans
/// chunks out before their group commit; an event is relayed only once it is committed (at most one flush interval
/// later), because a chunk that a crash loses is regenerated under the same seq with other text. So every id a
/// reader sees is durable, and a reader reconnecting with <c>Last-Event-ID</c> (even to a server restarted after a
/// SIGKILL) continues with no gap and no duplicate. A live chunk is relayed as it is only when its own run's group
/// commit stored it; when its run lost its lease (another node, or the recovery sweep, took the session and wrote
/// that seq again), the relay sends what the log holds instead, so no text a reader sees is ever replaced or
/// repeated. The stream ends at a terminal status, when the reader leaves, or when the server stops.
/// </summary>
internal sealed class GenerationStream(
    GenerationSessions sessions,
    IOptions<ServerOptions> options,
    IHostApplicationLifetime lifetime,
    ServerMetrics metrics)
{
    /// <summary>
    /// A generic follow of session <paramref name="sessionId"/>: events relayed (once durable) with heartbeats;
    /// used by the OpenAI face too. <paramref name="onEvent"/> returns false to end the stream; it queues what it
    /// writes, and <paramref name="flush"/> sends it: once per batch of events that became durable together (one
    /// group commit's chunks go out in one write, not one write each), and before waiting for the next commit.
    /// </summary>
    public async Task RelayAsync(
        string sessionId,
        IAsyncEnumerable<GenerationLogEvent> source,
        Func<GenerationLogEvent, Task<bool>> onEvent,
        Func<Task> onHeartbeat,
        Func<Task> flush,
        CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        var token = stop.Token;
        var channel = Channel.CreateBounded<GenerationLogEvent>(new BoundedChannelOptions(1024) { SingleReader = true, SingleWriter = true });
        var pump = PumpAsync(source, channel.Writer, token);
        try
        {
            var heartbeat = options.Value.HeartbeatInterval;
            long durable = 0;
            long sent = -1;
            var unsent = false;
            while (await IdleHeartbeat.WaitToReadAsync(channel.Reader, heartbeat, onHeartbeat, token))
            {
                while (channel.Reader.TryRead(out var e))
                {
                    if (e.Seq <= sent)
                    {
                        continue; // Already sent from the log (below).
                    }

                    if (unsent && e.Seq > durable)
                    {
                        // This one may wait for the next group commit: what is queued goes out first.
                        await flush();
                        unsent = false;
                    }

                    // Woken by the group commit's change signal (no polling on the hot path).
                    (durable, var asRelayed) = await sessions.WaitRelayableAsync(e, durable, token);
                    unsent = true;
                    if (asRelayed)
                    {
                        if (!await onEvent(e))
                        {
                            return;
                        }

                        sent = e.Seq;
                        continue;
                    }

                    // The run that produced this chunk lost its lease: send the stored events instead of its text.
                    foreach (var stored in await sessions.ReadStoredAfterAsync(sessionId, sent >= 0 ? sent : e.Seq - 1, token))
                    {
                        if (!await onEvent(stored))
                        {
                            return;
                        }

                        sent = stored.Seq;
                    }
                }

                if (unsent)
                {
                    await flush();
                    unsent = false;
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The reader left or the server is stopping: the reader reconnects with Last-Event-ID.
        }
        finally
        {
            await stop.CancelAsync();
            await pump;
        }
    }

    /// <summary>Writes the SSE stream of session <paramref name="id"/> after log seq <paramref name="afterSeq"/>.</summary>
    public async Task WriteAsync(HttpContext context, string id, string? ownerScope, long afterSeq, CancellationToken cancellationToken)
    {
        // Before any byte is sent: a missing (or someone else's) session is a 404 problem, not an empty stream.
        var session = await sessions.GetAsync(id, ownerScope, cancellationToken);
        await sessions.CheckFollowFromAsync(id, afterSeq, cancellationToken);
        var sse = new SseWriter(context.Response);
        await sse.StartAsync(cancellationToken);
        metrics.StreamsOpened.Add(1);
        if (GenerationMapping.IsSettled(session) && afterSeq >= session.LastSeq)
        {
            await sse.WriteEventAsync("done", new StreamDone(GenerationMapping.ToWire(session.Status)), null, cancellationToken);
            await sse.FlushAsync(cancellationToken);
            return;
        }

        await RelayAsync(
            id,
            sessions.FollowAsync(id, ownerScope, afterSeq, cancellationToken),
            async e =>
            {
                if (e.Type == GenerationLogEventType.Chunk)
                {
                    await sse.WriteEventAsync("chunk", new StreamChunk(e.Seq, e.Text ?? string.Empty), e.Seq, cancellationToken);
                }
                else if (e.StatusChange is { } change)
                {
                    await sse.WriteEventAsync(
                        "status",
                        new StreamStatus(e.Seq, GenerationMapping.ToWire(change.Status), change.Reason ?? change.FinishReason, change.Error),
                        e.Seq,
                        cancellationToken);
                    if (e.IsTerminal)
                    {
                        await sse.WriteEventAsync("done", new StreamDone(GenerationMapping.ToWire(change.Status)), null, cancellationToken);
                        await sse.FlushAsync(cancellationToken);
                        return false;
                    }
                }

                return true;
            },
            () => sse.HeartbeatAsync(cancellationToken),
            () => sse.FlushAsync(cancellationToken),
            cancellationToken);
    }

    private static async Task PumpAsync(IAsyncEnumerable<GenerationLogEvent> source, ChannelWriter<GenerationLogEvent> writer, CancellationToken cancellationToken)
    {
        Exception? failure = null;
        try
        {
            await foreach (var e in source.WithCancellation(cancellationToken))
            {
                await writer.WriteAsync(e, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped on purpose.
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        finally
        {
            writer.TryComplete(failure);
        }
    }
}
