using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Holdfast.Client.Models;
using Holdfast.Client.Streaming;

namespace Holdfast.Client;

public sealed partial class HoldfastClient
{
    /// <summary>
    /// Follows a generation's output live: yields every event after <paramref name="afterSeq"/> (the stored part first,
    /// then the live tail) in seq order, each exactly once. When the connection drops or the server restarts, it
    /// reconnects by itself from the last seq it yielded (<c>Last-Event-ID</c>), waiting with exponential backoff, so the
    /// caller sees no gap and no duplicate. The enumeration completes right after it yields the
    /// <see cref="GenerationDoneEvent"/> (the session reached completed, cancelled or failed). It throws
    /// <see cref="HoldfastApiException"/> when the server refuses the stream (404: no such session), and rethrows the last
    /// connection error when no connection succeeded for <see cref="FollowOptions.GiveUpAfter"/>.
    /// </summary>
    /// <param name="generationId">The generation to follow.</param>
    /// <param name="afterSeq">Yield only events with a larger seq; 0 for everything.</param>
    /// <param name="options">Reconnection settings; null for the defaults.</param>
    /// <param name="cancellationToken">Stops following (the enumeration ends with <see cref="OperationCanceledException"/>).</param>
    public async IAsyncEnumerable<GenerationStreamEvent> FollowAsync(
        string generationId,
        long afterSeq = 0,
        FollowOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(generationId);
        options ??= new FollowOptions();
        var lastSeq = afterSeq;
        var delay = options.InitialReconnectDelay;
        var sinceProgress = Stopwatch.StartNew();
        var attempt = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Exception? failure = null;
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var idleTimeout = options.IdleTimeout;
            void Touch()
            {
                if (idleTimeout != Timeout.InfiniteTimeSpan)
                {
                    idle.CancelAfter(idleTimeout);
                }
            }

            Touch();
            HttpResponseMessage? response = null;
            try
            {
                using var request = CreateRequest(HttpMethod.Get, $"api/v1/generations/{Escape(generationId)}/stream?after={lastSeq.ToString(CultureInfo.InvariantCulture)}");
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
                if (lastSeq > 0)
                {
                    request.Headers.TryAddWithoutValidation("Last-Event-ID", lastSeq.ToString(CultureInfo.InvariantCulture));
                }

                response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, idle.Token);
                if (!response.IsSuccessStatusCode)
                {
                    var problem = await ReadProblemAsync(response, idle.Token);
                    response.Dispose();
                    response = null;
                    if (!IsTransient(problem.Status))
                    {
                        throw problem;
                    }

                    failure = problem;
                }
            }
            catch (Exception e) when (IsConnectionFailure(e, cancellationToken))
            {
                response?.Dispose();
                response = null;
                failure = e;
            }

            if (response is not null)
            {
                using (response)
                {
                    Stream? body = null;
                    IAsyncEnumerator<SseEvent>? events = null;
                    try
                    {
                        try
                        {
                            body = await response.Content.ReadAsStreamAsync(idle.Token);
                            events = SseParser.ParseAsync(body, Touch, idle.Token).GetAsyncEnumerator(idle.Token);
                        }
                        catch (Exception e) when (IsConnectionFailure(e, cancellationToken))
                        {
                            failure = e;
                        }

                        while (events is not null)
                        {
                            bool hasNext;
                            try
                            {
                                hasNext = await events.MoveNextAsync();
                            }
                            catch (Exception e) when (IsConnectionFailure(e, cancellationToken))
                            {
                                failure = e;
                                break;
                            }

                            if (!hasNext)
                            {
                                // The server closed the stream without 'done' (it is shutting down): reconnect.
                                failure = null;
                                break;
                            }

                            sinceProgress.Restart();
                            attempt = 0;
                            delay = events.Current.Retry ?? options.InitialReconnectDelay;
                            var streamEvent = ToStreamEvent(events.Current, lastSeq);
                            if (streamEvent is null)
                            {
                                continue;
                            }

                            if (streamEvent is GenerationDoneEvent)
                            {
                                yield return streamEvent;
                                yield break;
                            }

                            if (streamEvent.Seq <= lastSeq)
                            {
                                continue;
                            }

                            lastSeq = streamEvent.Seq;
                            yield return streamEvent;
                        }
                    }
                    finally
                    {
                        if (events is not null)
                        {
                            await events.DisposeAsync();
                        }

                        if (body is not null)
                        {
                            await body.DisposeAsync();
                        }
                    }
                }
            }

            if (options.GiveUpAfter != Timeout.InfiniteTimeSpan && sinceProgress.Elapsed > options.GiveUpAfter)
            {
                throw failure ?? new IOException($"The stream of generation '{generationId}' kept ending before the session finished.");
            }

            attempt++;
            options.OnReconnecting?.Invoke(attempt, failure);
            var jitter = 0.8 + (Random.Shared.NextDouble() * 0.4);
            await Task.Delay(TimeSpan.FromMilliseconds(delay.TotalMilliseconds * jitter), cancellationToken);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, options.MaxReconnectDelay.TotalMilliseconds));
        }
    }

    private static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests
            or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout
            or HttpStatusCode.InternalServerError;

    private static bool IsConnectionFailure(Exception exception, CancellationToken callerToken) => exception switch
    {
        HttpRequestException => true,
        IOException => true,
        OperationCanceledException => !callerToken.IsCancellationRequested,
        _ => false,
    };

    /// <summary>Maps one SSE event of the stream to its typed form; null for events this client does not know.</summary>
    internal static GenerationStreamEvent? ToStreamEvent(SseEvent sse, long lastSeq)
    {
        long? idSeq = long.TryParse(sse.Id, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : null;
        try
        {
            switch (sse.EventType)
            {
                case "chunk":
                    var chunk = JsonSerializer.Deserialize<StreamChunk>(sse.Data, HoldfastJson.Options);
                    return chunk is null ? null : new GenerationChunkEvent(chunk.Seq, chunk.Text ?? string.Empty);
                case "status":
                    var status = JsonSerializer.Deserialize<StreamStatus>(sse.Data, HoldfastJson.Options);
                    return status is null ? null : new GenerationStatusEvent(status.Seq, status.Status, status.Reason, status.Error);
                case "done":
                    var done = JsonSerializer.Deserialize<StreamDone>(sse.Data, HoldfastJson.Options);
                    return done is null ? null : new GenerationDoneEvent(Math.Max(lastSeq, idSeq ?? 0), done.Status);
                default:
                    return null;
            }
        }
        catch (JsonException)
        {
            // A payload this client cannot read (a newer server's event): skip it rather than break the follow.
            return null;
        }
    }
}
