using System.Diagnostics;
using Holdfast.Generation;
using Holdfast.TestHelpers;
using Xunit.Abstractions;

namespace Holdfast.Tests.Generation;

[Collection(Holdfast.Tests.Storage.ResourceHeavyCollection.Name)]
public sealed class GenerationScaleTests(ITestOutputHelper output)
{
    [Fact(Timeout = 240_000)]
    public async Task PauseResume_ManySeedsRandomPoints_OutputEqualsUninterrupted()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "60",
            ["Scripted:MaxTokens"] = "80",
        });
        var random = new Random(42);

        async Task<GenerationSession> RunAsync(int seed, int[] pausePoints)
        {
            var request = GenerationTestHost.ScriptedRequest($"Property run {seed}", seed: seed);
            var (session, _) = await host.Sessions.CreateAsync(request);
            foreach (var point in pausePoints)
            {
                var current = await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= point || s.IsFinal, $"seed {seed}: {point} tokens");
                if (current.IsFinal)
                {
                    break;
                }

                GenerationSession paused;
                try
                {
                    paused = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(20));
                }
                catch (Holdfast.Sessions.SessionConflictException error) when (error.CurrentState == "completed")
                {
                    break; // It finished before the pause arrived.
                }

                if (paused.Status != GenerationStatus.Paused)
                {
                    break;
                }

                await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);
            }

            var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed, TimeSpan.FromSeconds(60));
            done.Output.ShouldBe(GenerationTestHost.ExpectedText(request, 80), $"seed {seed}, pauses at {string.Join(',', pausePoints)}");
            return done;
        }

        var runs = Enumerable.Range(1, 40)
            .Select(seed => (seed, points: Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(1, 70)).Order().ToArray()))
            .ToList();
        var results = await Task.WhenAll(runs.Select(r => Task.Run(() => RunAsync(r.seed, r.points))));

        var interrupted = results.Count(r => r.Attempts > 1);
        output.WriteLine($"{interrupted} of {results.Length} runs were paused and resumed at least once; {results.Sum(r => r.Attempts - 1)} resumes in total");
        interrupted.ShouldBeGreaterThan(results.Length / 2);
    }

    [Fact(Timeout = 240_000)]
    public async Task Run_1000ConcurrentSessions_AllRunAtOnceAndCompleteExactlyWithoutAnyWarning()
    {
        // 30 tokens at 10 tokens/s: every run lasts 3 s, longer than claiming all 1,000 takes, so they overlap.
        await using var host = await GenerationTestHost.StartAsync(
            new Dictionary<string, string?>
            {
                ["Scripted:TokensPerSecond"] = "10",
                ["Scripted:MaxTokens"] = "30",
                ["Scripted:MaxConcurrency"] = "1000",
                ["Storage:SqliteSynchronous"] = "FULL",
            },
            startRunner: false);
        var requests = Enumerable.Range(0, 1000).Select(i => GenerationTestHost.ScriptedRequest($"load {i}", seed: i)).ToList();
        var watch = Stopwatch.StartNew();
        var created = await Task.WhenAll(requests.Select(r => Task.Run(() => host.Sessions.CreateAsync(r))));
        var createdAfter = watch.Elapsed;

        using var sampling = new CancellationTokenSource();
        var peak = SamplePeakAsync(() => host.Runner.RunningCount, sampling.Token);
        watch.Restart();
        await host.StartRunnerAsync();
        var completed = await Poll.UntilAsync(() => CountCompletedAsync(host), n => n == 1000, "1000 sessions to complete", TimeSpan.FromSeconds(180));
        var ranFor = watch.Elapsed;
        await sampling.CancelAsync();
        var peakRunning = await peak;
        var sessions = await ListAllAsync(host);
        var byId = created.Select((c, i) => (c.Session.Id, Request: requests[i])).ToDictionary(x => x.Id, x => x.Request);

        output.WriteLine(
            $"created 1000 in {createdAfter.TotalSeconds:0.0} s; ran in {ranFor.TotalSeconds:0.0} s; peak {peakRunning} running at once; " +
            $"{host.Writer.Commits} group commits for {host.Writer.ChunksCommitted} chunks; {host.Logs.Entries.Count} log entries");
        created.Select(c => c.Session.Id).Distinct().Count().ShouldBe(1000);
        completed.ShouldBe(1000);
        peakRunning.ShouldBeGreaterThanOrEqualTo(900, "the sessions really ran concurrently");
        sessions.Count.ShouldBe(1000);
        foreach (var session in sessions)
        {
            session.Status.ShouldBe(GenerationStatus.Completed);
            session.Output.ShouldBe(GenerationTestHost.ExpectedText(byId[session.Id], 30), $"session {session.Id}");
            session.Attempts.ShouldBe(1);
        }

        host.Writer.ChunksCommitted.ShouldBe(30_000);
        host.Writer.Commits.ShouldBeLessThan(30_000 / 10, "chunks are committed in groups");
        host.Logs.Entries.ShouldNotContain(e => e.Message.Contains("locked", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("busy", StringComparison.OrdinalIgnoreCase));
        host.Logs.Entries.ShouldNotContain(e => e.Exception is Holdfast.Sessions.StoreUnavailableException);
        host.Logs.WarningsAndErrors.ShouldBeEmpty(string.Join(Environment.NewLine, host.Logs.WarningsAndErrors.Take(5)));
    }

    private static async Task<int> SamplePeakAsync(Func<int> sample, CancellationToken cancellationToken)
    {
        var peak = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(2));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                peak = Math.Max(peak, sample());
            }
        }
        catch (OperationCanceledException)
        {
            // Sampling stopped.
        }

        return Math.Max(peak, sample());
    }

    private static async Task<List<GenerationSession>> ListAllAsync(GenerationTestHost host)
    {
        var all = new List<GenerationSession>();
        string? cursor = null;
        do
        {
            var page = await host.Sessions.ListAsync(new GenerationListQuery { Limit = 500, Cursor = cursor });
            all.AddRange(page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return all;
    }

    private static async Task<int> CountCompletedAsync(GenerationTestHost host)
    {
        var count = 0;
        string? cursor = null;
        do
        {
            var page = await host.Sessions.ListAsync(new GenerationListQuery { Status = GenerationStatus.Completed, Limit = 500, Cursor = cursor });
            count += page.Items.Count;
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return count;
    }
}
