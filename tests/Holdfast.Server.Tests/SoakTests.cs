using System.Diagnostics;
using System.Globalization;
using System.Text;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Xunit.Abstractions;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>
/// The soak (scripts/soak.sh runs this test for longer): the real <c>holdfast serve</c> under mixed load for a given
/// time, after a warm-up of 10 s (30 s in the long form) that is not sampled (generations started, streamed over SSE, paused, resumed, cancelled and deleted; bridge-bot messages; reads),
/// sampling the server's resident memory, its open file handles and request latency every half second. Flat or it
/// fails: resident memory and handles may grow less than 10 % from the second quarter of the run to the last (the
/// first quarter is warm-up). The long form (HOLDFAST_SOAK_SECONDS ≥ 120) also holds p99 latency to less than 2× from
/// the second quarter to the last; the short form in the normal test command checks the leak bounds only (no timing).
/// HOLDFAST_SOAK_REPORT names a folder for samples.csv and soak.html (a chart of the three series).
/// </summary>
[Collection(FaultChecksCollection.Name)]
public sealed class SoakTests(ITestOutputHelper output, EndpointFuzzTests.Summary summary) : IClassFixture<EndpointFuzzTests.Summary>
{
    private static readonly TimeSpan SampleEvery = TimeSpan.FromMilliseconds(500);

    [Fact(Timeout = 7_500_000)]
    public async Task MixedLoad_ForAWhile_MemoryAndHandlesFlat()
    {
        var seconds = Environment.GetEnvironmentVariable("HOLDFAST_SOAK_SECONDS") is { Length: > 0 } s ? int.Parse(s, CultureInfo.InvariantCulture) : 20;
        var timing = seconds >= 120;
        using var data = new TempDirectory("hf-soak");
        using var serve = await ServeProcess.StartAsync(data.Path, ServeProcess.FreePort(), new Dictionary<string, string>
        {
            ["Scripted__TokensPerSecond"] = "200",
            ["Scripted__MaxTokens"] = "150",
            ["Logging__LogLevel__Default"] = "Warning",
        });
        using var client = UnixSocketHttp.Create(Path.Combine(data.Path, "holdfast.sock"));
        (await client.PostJsonAsync("/api/v1/bots", new StartBotRequest("soak-bot", "bridge"))).EnsureSuccessStatusCode();

        var latencies = new List<double>();
        var samples = new List<Sample>();
        var requests = 0;
        var errors = new List<string>();
        // Warm-up first (the JIT, the GC's budgets, SQLite's page cache, pooled connections): not sampled.
        var warmUp = TimeSpan.FromSeconds(timing ? 30 : 10);
        using var stop = new CancellationTokenSource(warmUp + TimeSpan.FromSeconds(seconds));
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(() => WorkAsync(client, w, latencies, errors, () => Interlocked.Increment(ref requests), stop.Token))).ToList();
        await Task.Delay(warmUp);
        lock (latencies)
        {
            latencies.Clear();
        }

        var clock = Stopwatch.StartNew();
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(SampleEvery, stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            double[] window;
            lock (latencies)
            {
                window = [.. latencies.Order()];
                latencies.Clear();
            }

            samples.Add(new Sample(clock.Elapsed.TotalSeconds, ResidentBytes(serve.ProcessId), OpenHandles(serve.ProcessId), window.Length == 0 ? 0 : window[Math.Clamp((int)Math.Ceiling(0.99 * window.Length) - 1, 0, window.Length - 1)]));
        }

        await Task.WhenAll(workers);
        errors.ShouldBeEmpty();

        var quarter = samples.Count / 4;
        samples.Count.ShouldBeGreaterThanOrEqualTo(8, "enough samples to compare quarters");
        var second = samples.Skip(quarter).Take(quarter).ToList();
        var last = samples.Skip(samples.Count - quarter).ToList();
        var memoryGrowth = (last.Average(x => x.ResidentBytes) / second.Average(x => x.ResidentBytes)) - 1;
        var handleGrowth = (last.Average(x => x.Handles) / second.Average(x => x.Handles)) - 1;
        var latencyRatio = Median(last.Select(x => x.P99Ms)) / Math.Max(0.001, Median(second.Select(x => x.P99Ms)));
        var line = string.Create(
            CultureInfo.InvariantCulture,
            $"soak: {seconds} s after {warmUp.TotalSeconds:0} s of warm-up, {requests} requests, resident memory {memoryGrowth:+0.0%;-0.0%}, handles {handleGrowth:+0.0%;-0.0%}, p99 latency {latencyRatio:0.00}x (second quarter to last)");
        output.WriteLine(line);
        summary.Print(line);
        if (Environment.GetEnvironmentVariable("HOLDFAST_SOAK_REPORT") is { Length: > 0 } folder)
        {
            Directory.CreateDirectory(folder);
            await File.WriteAllTextAsync(Path.Combine(folder, "samples.csv"), "seconds,resident_bytes,handles,p99_ms\n" + string.Concat(samples.Select(x => string.Create(CultureInfo.InvariantCulture, $"{x.Seconds:0.0},{x.ResidentBytes},{x.Handles},{x.P99Ms:0.00}\n"))));
            await File.WriteAllTextAsync(Path.Combine(folder, "soak.html"), Chart(samples, line));
            await File.WriteAllTextAsync(Path.Combine(folder, "summary.txt"), line + "\n");
        }

        memoryGrowth.ShouldBeLessThan(0.10, "resident memory grew by 10 % or more from the second quarter to the last");
        handleGrowth.ShouldBeLessThan(0.10, "open handles grew by 10 % or more from the second quarter to the last");
        if (timing)
        {
            latencyRatio.ShouldBeLessThan(2.0, "p99 latency doubled from the second quarter to the last");
        }
    }

    private static async Task WorkAsync(HttpClient client, int worker, List<double> latencies, List<string> errors, Func<int> counted, CancellationToken cancellationToken)
    {
        var random = new Random(worker);
        var n = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            n++;
            try
            {
                var started = Stopwatch.GetTimestamp();
                var generation = await (await client.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", $"soak {worker} {n}")]))).ReadAsync<Generation>();
                Record(latencies, started);
                counted();
                switch (random.Next(4))
                {
                    case 0:
                        // Follow it over SSE to the end.
                        using (var stream = await client.GetAsync($"/api/v1/generations/{generation.Id}/stream", HttpCompletionOption.ResponseHeadersRead, cancellationToken))
                        {
                            await stream.Content.ReadAsStringAsync(cancellationToken);
                        }

                        break;
                    case 1:
                        started = Stopwatch.GetTimestamp();
                        (await client.PostAsync($"/api/v1/generations/{generation.Id}/pause", content: null, cancellationToken)).Dispose();
                        Record(latencies, started);
                        (await client.PostAsync($"/api/v1/generations/{generation.Id}/resume", content: null, cancellationToken)).Dispose();
                        break;
                    case 2:
                        (await client.PostAsync($"/api/v1/generations/{generation.Id}/cancel?wait=5", content: null, cancellationToken)).Dispose();
                        break;
                    default:
                        started = Stopwatch.GetTimestamp();
                        (await client.PostJsonAsync($"/api/v1/bots/soak-bot/messages", new BotMessage($"soak {worker} {n}"))).EnsureSuccessStatusCode();
                        Record(latencies, started);
                        break;
                }

                started = Stopwatch.GetTimestamp();
                (await client.GetAsync($"/api/v1/generations/{generation.Id}", cancellationToken)).EnsureSuccessStatusCode();
                Record(latencies, started);
                counted();

                // Keep the store's size steady: delete what finished, so growth means a leak, not more data.
                await Poll.UntilAsync(
                    async () => (await (await client.GetAsync($"/api/v1/generations/{generation.Id}", cancellationToken)).ReadAsync<Generation>()).IsFinished,
                    $"{generation.Id} to finish",
                    TimeSpan.FromSeconds(60));
                (await client.DeleteAsync($"/api/v1/generations/{generation.Id}", cancellationToken)).EnsureSuccessStatusCode();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or InvalidOperationException or TimeoutException)
            {
                lock (errors)
                {
                    errors.Add($"worker {worker}: {e.Message}");
                }

                return;
            }
        }
    }

    private static void Record(List<double> latencies, long started)
    {
        lock (latencies)
        {
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }

    private static long ResidentBytes(int pid) =>
        File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024).First();

    private static int OpenHandles(int pid) => Directory.GetFiles($"/proc/{pid}/fd").Length;

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[sorted.Count / 2];
    }

    /// <summary>A self-contained HTML page with one SVG line chart per series.</summary>
    private static string Chart(List<Sample> samples, string title)
    {
        var html = new StringBuilder("<!doctype html><meta charset=\"utf-8\"><title>Holdfast soak</title><body style=\"font-family:sans-serif\">");
        html.Append(CultureInfo.InvariantCulture, $"<h1>Holdfast soak</h1><p>{System.Net.WebUtility.HtmlEncode(title)}</p>");
        foreach (var (name, unit, value) in new (string, string, Func<Sample, double>)[]
        {
            ("resident memory", "MiB", x => x.ResidentBytes / 1048576.0),
            ("open handles", "fds", x => x.Handles),
            ("p99 request latency per half second", "ms", x => x.P99Ms),
        })
        {
            var max = Math.Max(1e-9, samples.Max(value)) * 1.1;
            var end = Math.Max(1e-9, samples[^1].Seconds);
            var points = string.Join(' ', samples.Select(x => string.Create(CultureInfo.InvariantCulture, $"{40 + (x.Seconds / end * 740):0.0},{210 - (value(x) / max * 200):0.0}")));
            html.Append(CultureInfo.InvariantCulture, $"<h2>{name} ({unit})</h2><svg width=\"800\" height=\"230\" style=\"border:1px solid #ccc\">");
            html.Append(CultureInfo.InvariantCulture, $"<text x=\"2\" y=\"14\" font-size=\"11\">{max:0.#}</text><text x=\"2\" y=\"210\" font-size=\"11\">0</text><text x=\"740\" y=\"225\" font-size=\"11\">{end:0} s</text>");
            html.Append(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" points=\"{points}\"/></svg>");
        }

        return html.Append("</body>").ToString();
    }

    private sealed record Sample(double Seconds, long ResidentBytes, int Handles, double P99Ms);
}
