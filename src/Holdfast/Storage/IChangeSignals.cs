namespace Holdfast.Storage;

/// <summary>What changed: a session's log (chunks committed), its status, new runnable work, or a stop request.</summary>
public enum ChangeKind
{
    /// <summary>Chunks of <see cref="ChangeSignal.SessionId"/> were committed.</summary>
    Log,

    /// <summary>The status or desired state of <see cref="ChangeSignal.SessionId"/> changed (a status event may have been appended).</summary>
    Status,

    /// <summary>A session became queued (created, resumed, recovered): runners should look for work.</summary>
    Runnable,

    /// <summary>A running session's desired state left <c>running</c> (pause, cancel): its runner should stop it.</summary>
    StopRequested,
}

/// <summary>One change notice. Signals are hints, never data: a listener always re-reads the store.</summary>
public readonly record struct ChangeSignal(ChangeKind Kind, string? SessionId = null);

/// <summary>
/// Port: wakes followers and runners when something changed, so nobody polls on the hot path. In-process on SQLite
/// (one node), <c>LISTEN/NOTIFY</c> on PostgreSQL (every node). Delivery is at most once and coalescing: several
/// signals between two waits wake the listener once, and a signal published before a subscription started is not
/// replayed. So a listener subscribes first, then reads the store, then waits, then re-reads. The core publishes after
/// the store call that made the change returned (the change is committed).
/// </summary>
public interface IChangeSignals
{
    /// <summary>Announces a committed change to every subscriber of its session (and, for Runnable/StopRequested, to the node-wide ones). Never blocks on listeners.</summary>
    ValueTask PublishAsync(ChangeSignal signal, CancellationToken cancellationToken = default);

    /// <summary>
    /// Listens to one session's <see cref="ChangeKind.Log"/> and <see cref="ChangeKind.Status"/> signals
    /// (<paramref name="sessionId"/>), or, with null, to the node-wide <see cref="ChangeKind.Runnable"/> and
    /// <see cref="ChangeKind.StopRequested"/> signals of every session. Dispose to stop listening.
    /// </summary>
    IChangeSubscription Subscribe(string? sessionId);
}

/// <summary>A subscription from <see cref="IChangeSignals.Subscribe"/>.</summary>
public interface IChangeSubscription : IDisposable
{
    /// <summary>
    /// Completes when at least one signal arrived since the subscription started or the previous wait completed
    /// (at once if one is already waiting). Cancel <paramref name="cancellationToken"/> to bound the wait.
    /// </summary>
    Task WaitAsync(CancellationToken cancellationToken = default);
}
