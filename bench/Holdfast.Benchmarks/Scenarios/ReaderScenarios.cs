using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Holdfast.Client;
using Holdfast.Client.Streaming;
using Holdfast.Generation;
using Holdfast.Server;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>Readers of a session over the real server: a late reader of a long backlog, and many readers of a live one.</summary>
internal static class ReaderScenarios
{
    /// <summary>
    /// A late reader: a session with a 10,000-token output is finished and durable; a client then opens its SSE stream
    /// over real HTTP on TCP loopback (API key, no Unix socket) and reads the whole backlog. Timed from the request until
    /// the first byte of the body, and until the last event, one reader after another on fresh connections. The first
    /// read is a warm-up (JIT, connection pool) and is not counted; its text is checked against the stored output.
    /// </summary>
    public static async Task<IEnumerable<Measurement>> LateReaderAsync(ScenarioScale scale)
    {
        var tokens = scale.Pick(10_000, 2_000);
        var readers = scale.Pick(10, 3);
        var name = $"late reader of a {tokens:#,0}-token backlog, SSE over HTTP (TCP loopback)";
        using var directory = new ScratchDirectory("late");
        await using var app = await ServerScenarios.StartServerAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "0",
            ["Scripted:MaxTokens"] = tokens.ToString(CultureInfo.InvariantCulture),
        });
        var sessions = app.Services.GetRequiredService<GenerationSessions>();
        var (session, _) = await sessions.CreateAsync(new CreateGenerationRequest
        {
            Owner = "bench",
            Model = "scripted",
            Input = [new GenerationMessage("user", "A long answer about harbours and kelp")],
            Parameters = new GenerationParameters { Seed = 14 },
        });
        var end = await GenerationScenarios.FollowToEndAsync(sessions, session.Id);
        if (end.StatusChange?.Status != GenerationStatus.Completed)
        {
            throw new InvalidOperationException($"{session.Id} did not complete");
        }

        await app.Services.GetRequiredService<GenerationLogWriter>().FlushAsync();
        var stored = await sessions.GetAsync(session.Id, null);
        string key;
        using (var local = HoldfastClient.ForUnixSocket(Path.Combine(directory.Path, "holdfast.sock")))
        {
            key = (await local.CreateKeyAsync("bench", admin: true)).Key;
        }

        var url = new Uri(HoldfastServer.GetTcpAddress(app), $"/api/v1/generations/{session.Id}/stream");
        var firstBytes = new List<double>();
        var rates = new List<double>();
        for (var i = 0; i <= readers; i++)
        {
            // A fresh client (and TCP connection) per reader, as a late browser tab or a reconnecting client would.
            using var http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero });
            var (firstByte, total, chunks, text) = await ReadStreamAsync(http, url, key, keepText: i == 0);
            if (chunks != tokens)
            {
                throw new InvalidOperationException($"the late reader got {chunks} chunks, {tokens} expected");
            }

            if (i == 0)
            {
                if (!string.Equals(text, stored.Output, StringComparison.Ordinal))
                {
                    throw new InvalidOperationException("the late reader's text differs from the stored output");
                }

                continue; // warm-up, not counted
            }

            firstBytes.Add(firstByte);
            rates.Add(chunks / (total / 1000));
        }

        return
        [
            .. Percentiles.Describe(name, "request until the first byte", firstBytes, "ms"),
            new(name, "chunks/s, whole backlog (median of readers)", ReportRunner.Median(rates), "chunks/s"),
            new(name, "chunks/s, whole backlog (slowest reader)", rates.Min(), "chunks/s"),
        ];
    }

    /// <summary>Reads one SSE stream to its end: ms until the first body byte, ms in all, chunk events, and the text if asked.</summary>
    private static async Task<(double FirstByteMs, double TotalMs, int Chunks, string Text)> ReadStreamAsync(HttpClient http, Uri url, string key, bool keepText)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var started = Stopwatch.GetTimestamp();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        await using var body = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[64 * 1024];
        var firstByte = double.NaN;
        var chunks = 0;
        var text = new StringBuilder();
        var line = new List<byte>(256);
        var inChunk = false;
        var done = false;
        while (!done)
        {
            var read = await body.ReadAsync(buffer);
            if (read == 0)
            {
                break;
            }

            if (double.IsNaN(firstByte))
            {
                firstByte = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }

            for (var i = 0; i < read; i++)
            {
                if (buffer[i] != (byte)'\n')
                {
                    line.Add(buffer[i]);
                    continue;
                }

                var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(line);
                if (span.SequenceEqual("event: chunk"u8))
                {
                    chunks++;
                    inChunk = true;
                }
                else if (span.SequenceEqual("event: done"u8))
                {
                    done = true;
                }
                else if (inChunk && span.StartsWith("data: "u8))
                {
                    inChunk = false;
                    if (keepText)
                    {
                        using var json = JsonDocument.Parse(span[6..].ToArray());
                        text.Append(json.RootElement.GetProperty("text").GetString());
                    }
                }

                line.Clear();
            }
        }

        return (firstByte, Stopwatch.GetElapsedTime(started).TotalMilliseconds, chunks, text.ToString());
    }

    /// <summary>
    /// Fan-out: one session streams 300 tokens at 100 tokens/s; first one SSE reader, then (on a fresh server) 100,
    /// each over the Unix socket. Every token is timed from the runner's own in-process fan-out until a reader has it;
    /// what 100 readers add is their p99 minus the single reader's.
    /// </summary>
    public static async Task<IEnumerable<Measurement>> FanOutAsync(ScenarioScale scale)
    {
        var many = scale.Pick(100, 25);
        var single = await ReadersOfOneSessionAsync(1);
        var fanned = await ReadersOfOneSessionAsync(many);
        var name = $"fan-out: SSE readers of one session (100 tokens/s), 1 vs {many}, Unix socket";
        var oneSorted = single.Order().ToList();
        var manySorted = fanned.Order().ToList();
        return
        [
            .. Percentiles.Describe(name, "token at the reader after the runner had it, 1 reader", oneSorted, "ms"),
            .. Percentiles.Describe(name, $"token at a reader after the runner had it, {many} readers", manySorted, "ms"),
            new(name, $"p99 added by {many} readers (vs 1)", Percentiles.Of(manySorted, 99) - Percentiles.Of(oneSorted, 99), "ms"),
        ];
    }

    private static async Task<List<double>> ReadersOfOneSessionAsync(int readers)
    {
        const int Tokens = 300;
        using var directory = new ScratchDirectory("fanout");
        await using var app = await ServerScenarios.StartServerAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "100",
            ["Scripted:MaxTokens"] = Tokens.ToString(CultureInfo.InvariantCulture),
        });
        var socket = Path.Combine(directory.Path, "holdfast.sock");
        var clients = Enumerable.Range(0, readers).Select(_ => HoldfastClient.ForUnixSocket(socket)).ToList();
        try
        {
            var sessions = app.Services.GetRequiredService<GenerationSessions>();
            var (session, _) = await sessions.CreateAsync(new CreateGenerationRequest
            {
                Owner = "local",
                Model = "scripted",
                Input = [new GenerationMessage("user", "Fan out to many windows")],
                Parameters = new GenerationParameters { Seed = 3 },
            });

            // The reference: the runner's own fan-out, in process, before the group commit.
            var produced = new ConcurrentDictionary<long, long>();
            var reference = Task.Run(async () =>
            {
                await foreach (var e in sessions.FollowAsync(session.Id, null))
                {
                    produced[e.Seq] = Stopwatch.GetTimestamp();
                }
            });
            var texts = new ConcurrentBag<string>();
            var latencies = new ConcurrentQueue<double>();
            await Task.WhenAll(clients.Select(client => Task.Run(async () =>
            {
                var text = new StringBuilder();
                await foreach (var e in client.FollowAsync(session.Id))
                {
                    var at = Stopwatch.GetTimestamp();
                    if (e is GenerationChunkEvent chunk)
                    {
                        text.Append(chunk.Text);
                        if (produced.TryGetValue(chunk.Seq, out var seen))
                        {
                            latencies.Enqueue(Stopwatch.GetElapsedTime(seen, at).TotalMilliseconds);
                        }
                    }
                }

                texts.Add(text.ToString());
            })));
            await reference;
            var stored = await sessions.GetAsync(session.Id, null);
            if (texts.Count != readers || texts.Any(t => !string.Equals(t, stored.Output, StringComparison.Ordinal)))
            {
                throw new InvalidOperationException("a reader's text differs from the stored output");
            }

            return [.. latencies];
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }
}
