using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Tests.Generation;

/// <summary>The recovery sweep at start-up, against a database left as a dead process leaves it.</summary>
public sealed class GenerationRecoveryTests
{
    private static async Task<(string Id, string Partial)> LeaveRunningAsync(string dataDirectory, CreateGenerationRequest request, bool pauseRequested = false)
    {
        await using var dead = await GenerationTestHost.StartAsync(dataDirectory: dataDirectory, startRunner: false);
        var (session, _) = await dead.Sessions.CreateAsync(request);
        var store = dead.Services.GetRequiredService<SqliteGenerationStore>();
        // Claimed under the data directory's node id (the one the next runner on it has), as a process that then died would.
        var nodeId = dead.Services.GetRequiredService<Holdfast.Cluster.NodeIdentity>().NodeId;
        var claimed = await store.ClaimRunnableAsync(new RunClaimRequest(nodeId, TimeSpan.FromSeconds(10), 10), _ => new ClaimChoice(true));
        var running = claimed.Single().Change.Session;
        var token = claimed.Single().Lease.FencingToken;
        var chunks = GenerationTestHost.ExpectedChunks(request).Take(5).ToList();
        await store.CommitAsync([.. chunks.Select((text, i) => new ChunkAppend(running.Id, token, running.LastSeq + 1 + i, text))], []);
        if (pauseRequested)
        {
            await store.ApplyControlAsync(running.Id, null, GenerationCommand.Pause(), new Actor("alice"), null);
        }

        return (running.Id, string.Concat(chunks));
    }

    [Fact(Timeout = 60_000)]
    public async Task Recovery_AutoPolicy_RequeuesAndContinuesExactly()
    {
        using var temp = new TempDirectory();
        var request = GenerationTestHost.ScriptedRequest(seed: 31);
        var (id, partial) = await LeaveRunningAsync(temp.Path, request);

        await using var host = await GenerationTestHost.StartAsync(dataDirectory: temp.Path);
        var done = await host.WaitForStatusAsync(id, GenerationStatus.Completed);
        var log = await host.Sessions.ReadLogAsync(id, null);

        done.Output.ShouldStartWith(partial);
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
        done.Attempts.ShouldBe(2);
        log.Select(e => e.StatusChange?.Status).Where(s => s is not null).ShouldBe(
            [GenerationStatus.Queued, GenerationStatus.Running, GenerationStatus.Queued, GenerationStatus.Running, GenerationStatus.Completed]);
    }

    [Fact(Timeout = 60_000)]
    public async Task Recovery_ManualPolicy_PausesWithReasonInterruptedKeepingOutput()
    {
        using var temp = new TempDirectory();
        var request = GenerationTestHost.ScriptedRequest(seed: 32);
        var (id, partial) = await LeaveRunningAsync(temp.Path, request);

        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Generation:RecoveryPolicy"] = "manual" }, temp.Path);
        var paused = await host.Sessions.GetAsync(id, null);
        await host.Sessions.ResumeAsync(id, GenerationTestHost.Alice);
        var done = await host.WaitForStatusAsync(id, GenerationStatus.Completed);

        paused.Status.ShouldBe(GenerationStatus.Paused);
        paused.PauseReason.ShouldBe("interrupted");
        paused.Output.ShouldBe(partial);
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
    }

    [Fact(Timeout = 60_000)]
    public async Task Recovery_PauseAcknowledgedBeforeCrash_EndsPaused()
    {
        using var temp = new TempDirectory();
        var (id, partial) = await LeaveRunningAsync(temp.Path, GenerationTestHost.ScriptedRequest(seed: 33), pauseRequested: true);

        await using var host = await GenerationTestHost.StartAsync(dataDirectory: temp.Path);
        var session = await host.Sessions.GetAsync(id, null);

        session.Status.ShouldBe(GenerationStatus.Paused);
        session.PauseReason.ShouldBe("user");
        session.Output.ShouldBe(partial);
    }

    [Fact(Timeout = 60_000)]
    public async Task FollowAsync_AfterRestart_StoredPartThenNewProcessLiveTail()
    {
        using var temp = new TempDirectory();
        var request = GenerationTestHost.ScriptedRequest(seed: 34);
        var (id, partial) = await LeaveRunningAsync(temp.Path, request);

        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "100" }, temp.Path);
        var events = new List<GenerationLogEvent>();
        await foreach (var e in host.Sessions.FollowAsync(id, "alice"))
        {
            events.Add(e);
        }

        events.Select(e => e.Seq).ShouldBe(Enumerable.Range(1, events.Count).Select(i => (long)i));
        string.Concat(events.Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(GenerationTestHost.ExpectedText(request));
        events[^1].StatusChange!.Status.ShouldBe(GenerationStatus.Completed);
        partial.ShouldNotBeEmpty();
    }
}
