using Holdfast.Cluster;
using Holdfast.Sessions;

namespace Holdfast.Generation;

/// <summary>
/// The lease a node holds on one running session: <see cref="FencingToken"/> (the row's lease epoch) grows with every
/// claim and every recovery, so a write carrying an older token is refused (<see cref="LeaseLostException"/>).
/// </summary>
public sealed record RunLease(string SessionId, string NodeId, long FencingToken, DateTimeOffset ExpiresAt);

/// <summary>
/// A queued session offered to the runner inside a claim: its id, backend, whether it has output to continue, how
/// many sessions this claim offers in all, the cluster's load as the claim sees it (so a node of several takes only its
/// share, see <see cref="GenerationRules.ClaimShare"/>), and when the session was last changed (queued).
/// </summary>
public sealed record ClaimCandidate(string Id, string Backend, bool HasOutput, int Offered = 1, ClaimLoad? Load = null, DateTimeOffset QueuedSince = default);

/// <summary>
/// The cluster as one claim sees it, read in the claim's transaction: the other live nodes (heartbeat younger than the
/// lease duration, not stopped), the running sessions they hold, and the running sessions the claiming node holds.
/// </summary>
public sealed record ClaimLoad(int OtherLiveNodes, int HeldByOthers, int HeldByNode);

/// <summary>The runner's answer for one <see cref="ClaimCandidate"/>: take it (recording <see cref="Continuation"/>) or leave it queued.</summary>
public readonly record struct ClaimChoice(bool Take, string? Continuation = null)
{
    public static ClaimChoice Skip => default;
}

/// <summary>What a node asks for when it claims: who it is, how long its leases last, and how many sessions at most.</summary>
public sealed record RunClaimRequest(string NodeId, TimeSpan LeaseDuration, int Limit);

/// <summary>A claimed session (now <c>running</c>, its attempt counted) and the lease that fences its writes.</summary>
public sealed record RunClaim(GenerationChange Change, RunLease Lease);

/// <summary>A chunk produced under <see cref="FencingToken"/>, waiting for its group commit.</summary>
public sealed record ChunkAppend(string SessionId, long FencingToken, long Seq, string Text);

/// <summary>
/// How a run ended, written after its last chunks. <see cref="LastSeq"/> is the seq of the run's last chunk (or of
/// its claim when it produced none); <see cref="GenerationRules.DecideRunEnd"/> turns a complete over a log that does
/// not reach it (a lost group commit) into an interrupt under <see cref="Recovery"/>.
/// </summary>
public sealed record RunFinish(
    string SessionId,
    long FencingToken,
    GenerationCommand Command,
    long LastSeq,
    string? Error = null,
    string? FinishReason = null,
    long? InputTokens = null,
    GenerationRecoveryPolicy Recovery = GenerationRecoveryPolicy.Auto);

/// <summary>
/// What a recovery sweep takes: sessions left <c>running</c> whose lease expired, plus (when
/// <see cref="TakeOwnLeasesBack"/>, i.e. at start-up) every lease held under <see cref="NodeId"/>, expired or not.
/// </summary>
public sealed record RecoveryRequest(string NodeId, bool TakeOwnLeasesBack, GenerationRecoveryPolicy Policy);

/// <summary>
/// Port: the runner's side of generation sessions, under leases. A node claims queued sessions (holder, lease expiry
/// and a new fencing token recorded on the row), renews its leases in one statement well before they expire, commits
/// chunks and run endings fenced by the token, and recovers sessions whose lease expired. On SQLite one node holds
/// every lease; the code path is the same. Semantics: <c>docs/storage-ports.md</c>; tests: <c>tests/Holdfast.Storage.Contract</c>.
/// </summary>
public interface IRunStore
{
    /// <summary>
    /// In one transaction: offers up to <see cref="RunClaimRequest.Limit"/> queued sessions (desired <c>running</c>,
    /// oldest id first) to <paramref name="choose"/> (called inside the transaction: quick, no I/O) and moves each taken
    /// one to <c>running</c> through <see cref="GenerationStateMachine"/> (<see cref="GenerationCommand.Claim"/>): attempts
    /// + 1, continuation recorded, lease holder = node, lease expiry = now + duration, lease epoch + 1, status event and
    /// audit event written. Two nodes never claim one session: a session another node claimed first is skipped. Every
    /// candidate carries the cluster's <see cref="ClaimLoad"/> as read in this transaction (<see cref="RunClaimRequest.LeaseDuration"/>
    /// is the heartbeat age under which a node counts as live).
    /// </summary>
    Task<IReadOnlyList<RunClaim>> ClaimRunnableAsync(RunClaimRequest request, Func<ClaimCandidate, ClaimChoice> choose, CancellationToken cancellationToken = default);

    /// <summary>
    /// Extends every lease <paramref name="nodeId"/> holds on a running session to now + <paramref name="leaseDuration"/>,
    /// in one statement that also records the node's heartbeat (<c>cluster_nodes</c>: inserted when new, stopped mark
    /// cleared), and returns the leases it still holds (a run whose session is missing from the answer lost its lease
    /// and must stop without writing).
    /// </summary>
    /// <remarks>
    /// With <paramref name="stopping"/> (a node handing its sessions over on a graceful stop) the node's row stays
    /// marked stopped (<see cref="MarkNodeStoppedAsync"/>), so other nodes no longer count it as live when they share
    /// out the sessions it leaves.
    /// </remarks>
    Task<IReadOnlyList<RunLease>> RenewLeasesAsync(string nodeId, TimeSpan leaseDuration, bool stopping = false, CancellationToken cancellationToken = default);

    /// <summary>
    /// One group commit, one transaction: appends the chunks (per session, a run's consecutive chunks; chunks that do
    /// not follow the stored last seq are skipped: that is a gap left by a lost commit), then writes each run ending
    /// as <see cref="GenerationRules.DecideRunEnd"/> decides on the row as it is after the appends (status, log, audit).
    /// Every chunk and ending is fenced: when any carries a token that is not the row's current lease epoch (or the
    /// session is not running), nothing at all is written and <see cref="LeaseLostException"/> names those sessions;
    /// the caller drops them and commits the rest again. Returns the endings' changes in order.
    /// </summary>
    Task<IReadOnlyList<GenerationChange>> CommitAsync(IReadOnlyList<ChunkAppend> chunks, IReadOnlyList<RunFinish> finishes, CancellationToken cancellationToken = default);

    /// <summary>
    /// The recovery sweep, one transaction: every running session whose lease expired (and, with
    /// <see cref="RecoveryRequest.TakeOwnLeasesBack"/>, every one held by <see cref="RecoveryRequest.NodeId"/>) gets
    /// <see cref="GenerationRules.Recovery"/> (auto: queued again; manual: paused <c>interrupted</c>; an
    /// acknowledged pause or cancel is honoured), its lease cleared and its epoch increased. Live leases of other
    /// nodes are left alone.
    /// </summary>
    Task<IReadOnlyList<GenerationChange>> RecoverAbandonedAsync(RecoveryRequest request, CancellationToken cancellationToken = default);

    /// <summary>Records that <paramref name="nodeId"/> stopped gracefully (it holds nothing any more).</summary>
    Task MarkNodeStoppedAsync(string nodeId, CancellationToken cancellationToken = default);

    /// <summary>Every node that ever renewed on this store, by id, with the number of running sessions each holds.</summary>
    Task<IReadOnlyList<ClusterNode>> ListNodesAsync(CancellationToken cancellationToken = default);

    /// <summary>The holder of a running session (null when nobody holds it: not running, or its lease was released).</summary>
    Task<LeaseHolder?> FindHolderAsync(string sessionId, CancellationToken cancellationToken = default);

    /// <summary>Running sessions held by <paramref name="nodeId"/> whose desired state is no longer <c>running</c> (a pause or cancel to reconcile).</summary>
    Task<IReadOnlyList<string>> ListStopRequestedAsync(string nodeId, CancellationToken cancellationToken = default);
}
