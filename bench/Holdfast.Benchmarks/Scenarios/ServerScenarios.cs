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
    /// <summary>Many windows watch one session: how late does each see a token, compared with the runner?</summary>
    public static async Task<IEnumerable<Measurement>> FanOutAsync(ScenarioScale scale)
    {
        var readers = scale.Pick(100, 25);
        const int Tokens = 300;
        var name = $"{readers} SSE readers of one session (100 tokens/s), Unix socket";
        using var directory = new ScratchDirectory("fanout");
        await using var app = await StartServerAsync(directory.Path, new Dictionary<string, string?>
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
                var text = new System.Text.StringBuilder();
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
            if (texts.Any(t => !string.Equals(t, stored.Output, StringComparison.Ordinal)))
            {
                throw new InvalidOperationException("a reader's text differs from the stored output");
            }

            return
            [
                new(name, "readers that got the exact stored text", texts.Count, "readers"),
                .. Percentiles.Describe(name, "token at a reader after the runner had it (committed first)", latencies, "ms"),
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

    private static async Task<WebApplication> StartServerAsync(string dataDirectory, IDictionary<string, string?> settings)
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
