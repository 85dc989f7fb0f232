using System.Globalization;
using Holdfast.Generation;
using Holdfast.TestHelpers;
using Xunit.Abstractions;

namespace Holdfast.Tests.Generation;

/// <summary>A real child process runs generations and is killed with SIGKILL mid-stream; the next process restores them.</summary>
[Collection(Holdfast.Tests.Storage.ResourceHeavyCollection.Name)]
public sealed class GenerationCrashTests(ITestOutputHelper output)
{
    private const int Sessions = 8;
    private const int MaxTokens = 400;

    [Fact(Timeout = 300_000)]
    public async Task Run_ChildKilledWithSigkillMidStream10Times_RestoredOutputsEqualUninterrupted()
    {
        using var temp = new TempDirectory("holdfast-crash");
        var random = new Random(20261122);
        var killedMidStream = 0;
        long lastProgress = 0;

        for (var round = 0; round < 10; round++)
        {
            using var child = TestChildProcess.Start("generate", temp.Path, Sessions.ToString(CultureInfo.InvariantCulture), "30", MaxTokens.ToString(CultureInfo.InvariantCulture));
            await child.WaitForLinesAsync(1);
            var target = lastProgress + random.Next(15, 45);
            await Poll.UntilAsync(
                () =>
                {
                    if (child.HasExited)
                    {
                        throw new InvalidOperationException($"The child exited early: {child.Errors}");
                    }

                    return Task.FromResult(Progress(child.Lines) >= target);
                },
                $"round {round}: progress {target}",
                TimeSpan.FromSeconds(60),
                TimeSpan.FromMilliseconds(2));
            var lines = await child.KillAsync();
            lines.ShouldNotContain("done", $"round {round} must be killed mid-stream");
            lastProgress = Progress(lines);
            killedMidStream++;

            // What survived the kill is a prefix of the uninterrupted text, for every session.
            await using var check = await GenerationTestHost.StartAsync(ReadOnly(), temp.Path, startRunner: false);
            foreach (var session in (await check.Sessions.ListAsync(new GenerationListQuery { Owner = "crash" })).Items)
            {
                Expected(session).ShouldStartWith(session.Output, customMessage: $"round {round}, session {session.Id}");
            }

            output.WriteLine($"round {round}: killed at persisted progress {lastProgress}");
        }

        await using var host = await GenerationTestHost.StartAsync(
            new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "3000", ["Scripted:MaxTokens"] = MaxTokens.ToString(CultureInfo.InvariantCulture) },
            temp.Path);
        var all = await Poll.UntilAsync(
            () => host.Sessions.ListAsync(new GenerationListQuery { Owner = "crash" }),
            page => page.Items.Count == Sessions && page.Items.All(s => s.Status == GenerationStatus.Completed),
            "every restored session to complete");
        var running = await host.Sessions.ListAsync(new GenerationListQuery { Status = GenerationStatus.Running });

        killedMidStream.ShouldBe(10);
        running.Items.ShouldBeEmpty();
        foreach (var session in all.Items)
        {
            session.Output.ShouldBe(Expected(session), $"session {session.Id}");
            session.Attempts.ShouldBeGreaterThan(1);
        }

        all.Items.Sum(s => s.Attempts).ShouldBeGreaterThanOrEqualTo(Sessions + 10);
    }

    private static long Progress(IReadOnlyList<string> lines) =>
        lines.Where(l => l.StartsWith("progress ", StringComparison.Ordinal)).Select(l => long.Parse(l[9..], CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();

    private static Dictionary<string, string?> ReadOnly() => new() { ["Scripted:MaxTokens"] = MaxTokens.ToString(CultureInfo.InvariantCulture) };

    private static string Expected(GenerationSession session) =>
        GenerationTestHost.ExpectedText(new CreateGenerationRequest { Owner = session.Owner, Model = session.Model, Input = session.Input, Parameters = session.Parameters }, MaxTokens);
}
