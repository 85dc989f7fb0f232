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
    public async Task Run_1000ConcurrentSessions_AllCompleteWithoutDatabaseLocked()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "100",
            ["Scripted:MaxTokens"] = "30",
            ["Scripted:MaxConcurrency"] = "1000",
            ["Storage:SqliteSynchronous"] = "FULL",
        });
        var watch = Stopwatch.StartNew();

        var created = await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => Task.Run(() =>
            host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest($"load {i}", seed: i)))));
        var createdAfter = watch.Elapsed;
        var completed = await Poll.UntilAsync(() => CountCompletedAsync(host), n => n == 1000, "1000 sessions to complete", TimeSpan.FromSeconds(180));
        var failed = await host.Sessions.ListAsync(new GenerationListQuery { Status = GenerationStatus.Failed });

        output.WriteLine($"created 1000 in {createdAfter.TotalSeconds:0.0} s; all completed after {watch.Elapsed.TotalSeconds:0.0} s; {host.Writer.Commits} group commits for {host.Writer.ChunksCommitted} chunks");
        created.Select(c => c.Session.Id).Distinct().Count().ShouldBe(1000);
        failed.Items.ShouldBeEmpty();
        host.Writer.ChunksCommitted.ShouldBe(30_000);
        host.Writer.Commits.ShouldBeLessThan(30_000 / 10, "chunks are committed in groups");
        completed.ShouldBe(1000);
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
