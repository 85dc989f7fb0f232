using System.Collections.Concurrent;
using System.Diagnostics;
using Holdfast.Generation;
using Holdfast.Generation.Backends;
using Holdfast.Sessions;
using Microsoft.Extensions.AI;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>Generation sessions end to end: the runner, group commit and SQLite (synchronous FULL, the default).</summary>
internal static class GenerationScenarios
{
    private static readonly Actor Bench = new("bench");

    /// <summary>One session, backend as fast as it goes: does persistence slow the stream down?</summary>
    public static async Task<IEnumerable<Measurement>> OneFastStreamAsync(ScenarioScale scale)
    {
        const string Name = "one stream, backend unthrottled";
        var tokens = scale.Pick(20_000, 5_000);
        var request = BenchHost.Request(1, tokens);

        var backend = new ScriptedChatClient(new ScriptedBackendOptions { TokensPerSecond = 0, MaxTokens = tokens });
        var watch = Stopwatch.StartNew();
        var rawTokens = 0;
        await foreach (var update in backend.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, request.Input[0].Content)], new ChatOptions { Seed = 1 }))
        {
            rawTokens += update.Text.Length > 0 ? 1 : 0;
        }

        var rawRate = rawTokens / watch.Elapsed.TotalSeconds;

        using var directory = new ScratchDirectory("one");
        await using var host = await BenchHost.StartAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "0",
            ["Scripted:MaxTokens"] = tokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        watch.Restart();
        var (session, _) = await host.Sessions.CreateAsync(request);
        var streamed = 0;
        await foreach (var e in host.Sessions.FollowAsync(session.Id, null))
        {
            streamed += e.Type == GenerationLogEventType.Chunk ? 1 : 0;
        }

        var streamedRate = streamed / watch.Elapsed.TotalSeconds;
        var committedAfter = watch.Elapsed;
        await host.Writer.FlushAsync();

        var reads = new List<double>();
        for (var i = 0; i < 50; i++)
        {
            var read = Stopwatch.StartNew();
            var stored = await host.Sessions.GetAsync(session.Id, null);
            reads.Add(read.Elapsed.TotalMilliseconds);
            if (stored.Usage.OutputTokens != tokens)
            {
                throw new InvalidOperationException($"expected {tokens} tokens, stored {stored.Usage.OutputTokens}");
            }
        }

        return
        [
            new(Name, "scripted backend alone", rawRate, "tokens/s"),
            new(Name, "through Holdfast (streamed to a reader and persisted)", streamedRate, "tokens/s"),
            new(Name, "tokens in the output", tokens, "tokens"),
            new(Name, "group commits for it", host.Writer.Commits, "commits"),
            new(Name, "create to completed", committedAfter.TotalMilliseconds, "ms"),
            .. Percentiles.Describe(Name, $"read the session with its {tokens:#,0}-token output", reads, "ms"),
        ];
    }

    /// <summary>Many sessions at once, backend as fast as it goes: the group commit's throughput.</summary>
    public static async Task<IEnumerable<Measurement>> ManyFastStreamsAsync(ScenarioScale scale)
    {
        var sessions = scale.Pick(1_000, 250);
        const int Tokens = 200;
        var name = $"{sessions:#,0} sessions × {Tokens} tokens, unthrottled";
        using var directory = new ScratchDirectory("many");
        using var meters = new HoldfastMeters();
        await using var host = await BenchHost.StartAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "0",
            ["Scripted:MaxTokens"] = Tokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Scripted:MaxConcurrency"] = sessions.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var watch = Stopwatch.StartNew();
        var runs = await Task.WhenAll(Enumerable.Range(0, sessions).Select(i => Task.Run(async () =>
        {
            var (session, _) = await host.Sessions.CreateAsync(BenchHost.Request(i));
            return await FollowToEndAsync(host.Sessions, session.Id);
        })));
        var elapsed = watch.Elapsed;
        if (runs.Any(r => r.StatusChange?.Status != GenerationStatus.Completed))
        {
            throw new InvalidOperationException("a session did not complete");
        }

        await host.Writer.FlushAsync();
        var chunks = host.Writer.ChunksCommitted;
        return
        [
            new(name, "all created and completed in", elapsed.TotalSeconds, "s"),
            new(name, "chunks persisted", chunks / elapsed.TotalSeconds, "chunks/s"),
            new(name, "chunks per group commit (mean)", (double)chunks / Math.Max(1, host.Writer.Commits), "chunks"),
            .. Percentiles.Describe(name, "group commit duration", meters.Find("flush"), "ms"),
        ];
    }

    /// <summary>Many sessions streaming at a model's pace: how far behind the live stream the durable log is.</summary>
    public static async Task<IEnumerable<Measurement>> ManyPacedStreamsAsync(ScenarioScale scale, int fullSessions)
    {
        var sessions = scale.Pick(fullSessions, fullSessions / 4);
        const int Tokens = 200;
        const int Rate = 50;
        var name = $"{sessions:#,0} sessions × {Tokens} tokens at {Rate} tokens/s";
        using var directory = new ScratchDirectory("paced");
        using var meters = new HoldfastMeters();
        await using var host = await BenchHost.StartAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = Rate.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Scripted:MaxTokens"] = Tokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Scripted:MaxConcurrency"] = sessions.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var lags = new ConcurrentQueue<double>();
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, sessions).Select(i => Task.Run(async () =>
        {
            var (session, _) = await host.Sessions.CreateAsync(BenchHost.Request(i));
            if (i % 20 != 0)
            {
                await FollowToEndAsync(host.Sessions, session.Id);
                return;
            }

            // Every 20th session has two readers: the live one (before the group commit) and the committed one.
            var live = new ConcurrentDictionary<long, long>();
            var committed = new ConcurrentDictionary<long, long>();
            await Task.WhenAll(
                Task.Run(async () =>
                {
                    await foreach (var e in host.Sessions.FollowAsync(session.Id, null))
                    {
                        live[e.Seq] = Stopwatch.GetTimestamp();
                    }
                }),
                Task.Run(async () =>
                {
                    await foreach (var e in host.Sessions.FollowCommittedAsync(session.Id, null))
                    {
                        committed[e.Seq] = Stopwatch.GetTimestamp();
                    }
                }));
            foreach (var (seq, at) in committed)
            {
                if (live.TryGetValue(seq, out var seen))
                {
                    lags.Enqueue(Stopwatch.GetElapsedTime(seen, at).TotalMilliseconds);
                }
            }
        })));
        var elapsed = watch.Elapsed;
        var ideal = TimeSpan.FromSeconds((double)Tokens / Rate);
        return
        [
            new(name, "all completed in (one session alone: " + ideal.TotalSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + " s)", elapsed.TotalSeconds, "s"),
            new(name, "chunks persisted", host.Writer.ChunksCommitted / elapsed.TotalSeconds, "chunks/s"),
            .. Percentiles.Describe(name, "durable log behind the live stream", lags, "ms"),
            .. Percentiles.Describe(name, "group commit duration", meters.Find("flush"), "ms"),
        ];
    }

    /// <summary>Pause acknowledged by the runner, and the first token after resume.</summary>
    public static async Task<IEnumerable<Measurement>> ControlLatencyAsync(ScenarioScale scale)
    {
        var sessions = scale.Pick(200, 50);
        var name = $"pause and resume, {sessions} running sessions";
        using var directory = new ScratchDirectory("control");
        await using var host = await BenchHost.StartAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "20",
            ["Scripted:MaxTokens"] = "5000", // planned up front by the scripted backend: keep the heap the backend's small
        });
        var ids = new List<string>();
        for (var i = 0; i < sessions; i++)
        {
            ids.Add((await host.Sessions.CreateAsync(BenchHost.Request(i))).Session.Id);
        }

        await WaitUntilAsync(() => Task.FromResult(host.Runner.RunningCount == sessions), TimeSpan.FromSeconds(60));

        var pauses = new List<double>();
        var resumes = new List<double>();
        foreach (var id in ids)
        {
            var watch = Stopwatch.StartNew();
            var paused = await host.Sessions.PauseAsync(id, Bench, wait: TimeSpan.FromSeconds(30));
            pauses.Add(watch.Elapsed.TotalMilliseconds);
            if (paused.Status != GenerationStatus.Paused)
            {
                throw new InvalidOperationException($"{id} is {paused.Status} after pause");
            }

            using var firstToken = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var stream = host.Sessions.FollowAsync(id, null, paused.LastSeq, firstToken.Token).GetAsyncEnumerator(firstToken.Token);
            try
            {
                watch.Restart();
                await host.Sessions.ResumeAsync(id, Bench);
                while (await stream.MoveNextAsync() && stream.Current.Type != GenerationLogEventType.Chunk)
                {
                }

                resumes.Add(watch.Elapsed.TotalMilliseconds);
            }
            finally
            {
                await stream.DisposeAsync();
            }

            await host.Sessions.CancelAsync(id, Bench);
        }

        return
        [
            .. Percentiles.Describe(name, "pause until the runner stopped (wait)", pauses, "ms"),
            .. Percentiles.Describe(name, "resume until the first new token", resumes, "ms"),
        ];
    }

    /// <summary>Memory held per running session (scripted backend, its own state included).</summary>
    public static async Task<IEnumerable<Measurement>> MemoryPerSessionAsync(ScenarioScale scale)
    {
        var sessions = scale.Pick(1_000, 250);
        var name = $"memory, {sessions:#,0} running sessions";
        using var directory = new ScratchDirectory("memory");

        // The scripted backend plans its whole output up front; 2,000 tokens keeps that part small and visible.
        await using var host = await BenchHost.StartAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "2",
            ["Scripted:MaxTokens"] = "2000",
            ["Scripted:MaxConcurrency"] = sessions.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        for (var i = 0; i < sessions; i++)
        {
            await host.Sessions.CreateAsync(BenchHost.Request(i));
        }

        await WaitUntilAsync(() => Task.FromResult(host.Runner.RunningCount == sessions), TimeSpan.FromSeconds(60));
        var heapAfter = GC.GetTotalMemory(forceFullCollection: true);
        return
        [
            new(name, "managed heap per running session (scripted backend's 2,000 planned tokens included)", (heapAfter - heapBefore) / 1024.0 / sessions, "KiB"),
        ];
    }

    /// <summary>Graceful stop with many sessions running, and the restart that resumes them all.</summary>
    public static async Task<IEnumerable<Measurement>> RestartAsync(ScenarioScale scale)
    {
        var sessions = scale.Pick(1_000, 250);
        var name = $"restart with {sessions:#,0} running sessions";
        using var directory = new ScratchDirectory("restart");
        var settings = new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "5",
            // The scripted backend plans its whole output up front: 100,000 tokens × 1,000 sessions was a 5 GB heap,
            // and whether a blocking collection of it fell into the restart made this scenario bimodal (BENCHMARKS.md).
            ["Scripted:MaxTokens"] = "2000",
            ["Scripted:MaxConcurrency"] = sessions.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        TimeSpan stop;
        await using (var first = await BenchHost.StartAsync(directory.Path, settings))
        {
            for (var i = 0; i < sessions; i++)
            {
                await first.Sessions.CreateAsync(BenchHost.Request(i));
            }

            await WaitUntilAsync(() => Task.FromResult(first.Runner.RunningCount == sessions), TimeSpan.FromSeconds(60));
            var watch = Stopwatch.StartNew();
            await first.StopAsync();
            stop = watch.Elapsed;
        }

        var gcPause = GC.GetTotalPauseDuration();
        var gen2 = GC.CollectionCount(2);
        var restart = Stopwatch.StartNew();
        await using var second = await BenchHost.StartAsync(directory.Path, settings);
        var recovered = restart.Elapsed;
        await WaitUntilAsync(() => Task.FromResult(second.Runner.RunningCount == sessions), TimeSpan.FromSeconds(120));
        var allRunning = restart.Elapsed;
        return
        [
            new(name, "graceful stop (all paused and persisted)", stop.TotalMilliseconds, "ms"),
            new(name, "start until recovery swept", recovered.TotalMilliseconds, "ms"),
            new(name, "start until all running again", allRunning.TotalMilliseconds, "ms"),
            new(name, "GC pauses during the restart (start until all running)", (GC.GetTotalPauseDuration() - gcPause).TotalMilliseconds, "ms"),
            new(name, "gen2 collections during the restart", GC.CollectionCount(2) - gen2, "collections"),
            new(name, "managed heap after the restart", GC.GetTotalMemory(forceFullCollection: false) / 1048576.0, "MiB"),
        ];
    }

    internal static async Task<GenerationLogEvent> FollowToEndAsync(GenerationSessions sessions, string id)
    {
        GenerationLogEvent? last = null;
        await foreach (var e in sessions.FollowAsync(id, null))
        {
            last = e;
        }

        return last?.StatusChange is { } ? last : throw new InvalidOperationException($"{id}: the follow ended without a status");
    }

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"condition not met within {timeout}");
            }

            await Task.Delay(20);
        }
    }
}

/// <summary>Full size, or <c>--quick</c> for a smoke run.</summary>
internal sealed record ScenarioScale(bool Quick)
{
    public int Pick(int full, int quick) => Quick ? quick : full;
}
