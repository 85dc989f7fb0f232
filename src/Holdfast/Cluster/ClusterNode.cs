namespace Holdfast.Cluster;

/// <summary>
/// One node as the store knows it: when it started, its last heartbeat (written with every lease renewal), when it
/// stopped gracefully (null while it runs or after a crash), and how many running generation sessions it holds.
/// </summary>
public sealed record ClusterNode(string NodeId, DateTimeOffset StartedAt, DateTimeOffset HeartbeatAt, DateTimeOffset? StoppedAt, int SessionsHeld);

/// <summary>Who holds a session now: the node, the fencing token of its lease, and when the lease expires unless renewed.</summary>
public sealed record LeaseHolder(string NodeId, long Epoch, DateTimeOffset LeaseExpiresAt);
