using Holdfast.Generation;
using Holdfast.Sessions;

namespace Holdfast.Storage.Contract;

/// <summary>Sessions and runs the generation suites start from.</summary>
public static class GenerationData
{
    public static readonly Actor Alice = new("alice");

    /// <summary>The lease the suites claim with.</summary>
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(10);

    /// <summary>A new session to insert, for alice.</summary>
    public static NewGeneration NewSession(string id, string? key = null, string? hash = null) => new(
        id, "alice", "scripted", "scripted", [new GenerationMessage("user", "hello")], GenerationParameters.Default, null, null, key, hash);

    /// <summary>Creates <paramref name="id"/>, runs it on node-a with <paramref name="chunks"/> and completes it.</summary>
    public static async Task<GenerationSession> CompletedSessionAsync(TestStore store, string id, IReadOnlyList<string> chunks)
    {
        await store.Generations.CreateAsync(NewSession(id), Alice);
        var claim = (await store.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 100), c => new ClaimChoice(c.Id == id))).Single();
        var first = claim.Change.Session.LastSeq + 1;
        var appends = chunks.Select((text, i) => new ChunkAppend(id, claim.Lease.FencingToken, first + i, text)).ToList();
        var finish = new RunFinish(id, claim.Lease.FencingToken, GenerationCommand.Complete, first + chunks.Count - 1, FinishReason: "stop");
        var changes = await store.Runs.CommitAsync(appends, [finish]);
        return changes.Single().Session;
    }
}
