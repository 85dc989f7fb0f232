using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Holdfast.Bots;
using Holdfast.Client;
using Holdfast.Client.Streaming;
using Holdfast.Generation;
using Holdfast.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using ClientModels = Holdfast.Client.Models;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>Through the real server: Kestrel on the Unix socket, Server-Sent Events, the .NET client.</summary>
internal static class ServerScenarios
{
    /// <summary>
    /// Control under load: many SSE followers attached (several per session) and one pause per session sent all at
    /// once over the socket, each waiting until its runner stopped. Pause-to-stopped is measured server-side (the
    /// control endpoint's own histogram, request received to answer) and client-side (the HTTP round trip); then every
    /// session is resumed to completion and every follower's text is compared with the stored output.
    /// </summary>
    public static async Task<IEnumerable<Measurement>> ControlUnderLoadAsync(ScenarioScale scale)
    {
        var sessionCount = scale.Pick(200, 50);
        const int FollowersPerSession = 5;
        var followerCount = sessionCount * FollowersPerSession;
        var name = $"{followerCount:#,0} SSE followers, {sessionCount} pauses at once (wait), Unix socket";
        using var directory = new ScratchDirectory("control-load");
        await using var app = await StartServerAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "20",
            ["Scripted:MaxTokens"] = "5000", // 250 s each; the scripted backend plans it up front, so keep that heap small
        });
        using var meters = new HoldfastMeters();
        var socket = Path.Combine(directory.Path, "holdfast.sock");
        var clients = Enumerable.Range(0, 20).Select(_ => HoldfastClient.ForUnixSocket(socket)).ToList();
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            var sessions = app.Services.GetRequiredService<GenerationSessions>();
            var ids = new List<string>();
            for (var i = 0; i < sessionCount; i++)
            {
                var (session, _) = await sessions.CreateAsync(new CreateGenerationRequest
                {
                    Owner = "local",
                    Model = "scripted",
                    Input = [new GenerationMessage("user", $"Control under load {i}")],
                    Parameters = new GenerationParameters { Seed = i },
                });
                ids.Add(session.Id);
            }

            var attached = new CountdownEvent(followerCount);
            var followers = Enumerable.Range(0, followerCount).Select(f => Task.Run(async () =>
            {
                var text = new System.Text.StringBuilder();
                var first = true;
                await foreach (var e in clients[f % clients.Count].FollowAsync(ids[f % sessionCount], cancellationToken: stop.Token))
                {
                    if (e is GenerationChunkEvent chunk)
                    {
                        text.Append(chunk.Text);
                        if (first)
                        {
                            first = false;
                            attached.Signal();
                        }
                    }
                }

                return (Id: ids[f % sessionCount], Text: text.ToString());
            })).ToList();
            if (!attached.Wait(TimeSpan.FromMinutes(2), stop.Token))
            {
                throw new InvalidOperationException($"only {followerCount - attached.CurrentCount} of {followerCount} followers got a first chunk");
            }

            // All pauses at once, each waiting until its runner stopped.
            var clientSide = new ConcurrentQueue<double>();
            using var start = new SemaphoreSlim(0);
            var pauses = ids.Select((id, i) => Task.Run(async () =>
            {
                await start.WaitAsync(stop.Token);
                var watch = Stopwatch.StartNew();
                var paused = await clients[i % clients.Count].PauseGenerationAsync(id, wait: TimeSpan.FromSeconds(60), cancellationToken: stop.Token);
                clientSide.Enqueue(watch.Elapsed.TotalMilliseconds);
                return paused;
            })).ToList();
            start.Release(ids.Count);
            var results = await Task.WhenAll(pauses);
            if (results.FirstOrDefault(r => r.Status != ClientModels.GenerationStatus.Paused) is { } notPaused)
            {
                throw new InvalidOperationException($"{notPaused.Id} is {notPaused.Status} after its pause returned");
            }

            var serverSide = meters.Find("control.duration").ToList();

            // Resumed, a little more text, then cancelled: every follower's stream ends, with the whole text.
            foreach (var (id, i) in ids.Select((id, i) => (id, i)))
            {
                await clients[i % clients.Count].ResumeGenerationAsync(id, cancellationToken: stop.Token);
            }

            await Task.Delay(TimeSpan.FromSeconds(2), stop.Token);
            foreach (var (id, i) in ids.Select((id, i) => (id, i)))
            {
                await clients[i % clients.Count].CancelGenerationAsync(id, wait: TimeSpan.FromSeconds(60), cancellationToken: stop.Token);
            }

            var texts = await Task.WhenAll(followers);
            var exact = 0;
            foreach (var (id, text) in texts)
            {
                var stored = await sessions.GetAsync(id, null, stop.Token);
                if (stored.Status == GenerationStatus.Cancelled && string.Equals(text, stored.Output, StringComparison.Ordinal))
                {
                    exact++;
                }
            }

            return
            [
                new(name, "followers that got the exact stored text", exact, $"of {followerCount}"),
                .. Percentiles.Describe(name, "pause until stopped, server-side", serverSide, "ms"),
                .. Percentiles.Describe(name, "pause until stopped, client-side", clientSide, "ms"),
            ];
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>Create-and-follow round trips through HTTP: time to the first token a client sees.</summary>
    public static async Task<IEnumerable<Measurement>> FirstTokenAsync(ScenarioScale scale)
    {
        var count = scale.Pick(200, 50);
        var name = $"create over the socket until the first token, {count} sessions one after another";
        using var directory = new ScratchDirectory("first");
        await using var app = await StartServerAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "1000",
            ["Scripted:MaxTokens"] = "20",
        });
        using var client = HoldfastClient.ForUnixSocket(Path.Combine(directory.Path, "holdfast.sock"));
        var creates = new List<double>();
        var firstTokens = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var watch = Stopwatch.StartNew();
            var generation = await client.CreateGenerationAsync(new ClientModels.CreateGenerationRequest(
                "scripted",
                [new ClientModels.InputMessage("user", $"First token {i}")],
                Parameters: new ClientModels.GenerationParameters(Seed: i)));
            creates.Add(watch.Elapsed.TotalMilliseconds);
            await foreach (var e in client.FollowAsync(generation.Id))
            {
                if (e is GenerationChunkEvent)
                {
                    firstTokens.Add(watch.Elapsed.TotalMilliseconds);
                    break;
                }
            }
        }

        return
        [
            .. Percentiles.Describe(name, "POST /api/v1/generations", creates, "ms"),
            .. Percentiles.Describe(name, "create until the first streamed token", firstTokens, "ms"),
        ];
    }

    /// <summary>Bot sessions: received messages recorded (each one transaction with its audit event).</summary>
    public static async Task<IEnumerable<Measurement>> BotMessagesAsync(ScenarioScale scale)
    {
        var bots = scale.Pick(200, 50);
        const int PerBot = 20;
        var name = $"{bots} bridge bots × {PerBot} messages, concurrently";
        using var directory = new ScratchDirectory("bots");
        await using var host = await BenchHost.StartAsync(directory.Path, new Dictionary<string, string?>());
        var manager = host.Services.GetRequiredService<BotManager>();
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, bots).Select(i => Task.Run(() =>
            manager.StartSessionAsync(new StartBotSession($"bench-bot-{i}", BridgeBotConnector.TypeName)))));
        var started = watch.Elapsed;
        var latencies = new ConcurrentQueue<double>();
        watch.Restart();
        await Task.WhenAll(Enumerable.Range(0, bots).Select(i => Task.Run(async () =>
        {
            for (var m = 0; m < PerBot; m++)
            {
                var one = Stopwatch.StartNew();
                await manager.RecordMessageAsync($"bench-bot-{i}", $"message {m} for bot {i}");
                latencies.Enqueue(one.Elapsed.TotalMilliseconds);
            }
        })));
        var elapsed = watch.Elapsed;
        var sample = await manager.GetAsync("bench-bot-0");
        if (!string.Equals(sample.LastMessage, $"message {PerBot - 1} for bot 0", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("a message was lost");
        }

        return
        [
            new(name, "sessions started", bots / started.TotalSeconds, "starts/s"),
            new(name, "messages recorded", bots * PerBot / elapsed.TotalSeconds, "messages/s"),
            .. Percentiles.Describe(name, "one message recorded", latencies, "ms"),
        ];
    }

    internal static async Task<WebApplication> StartServerAsync(string dataDirectory, IDictionary<string, string?> settings)
    {
        var all = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Storage:DataDirectory"] = dataDirectory,
            ["Server:Urls"] = "http://127.0.0.1:0",
            ["Generation:DefaultBackend"] = "scripted",
            ["Server:RateLimitPerSecond"] = "100000",
            ["Server:RateLimitBurst"] = "100000",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings.Concat(BenchHost.Overrides))
        {
            all[key] = value;
        }

        var app = await HoldfastServer.BuildAsync(HoldfastServer.CreateBuilder([], all));
        await app.StartAsync();
        return app;
    }
}
