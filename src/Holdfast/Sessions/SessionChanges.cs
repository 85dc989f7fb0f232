namespace Holdfast.Sessions;

/// <summary>
/// A session changed: <paramref name="Kind"/> and <paramref name="SessionId"/> say which. <paramref name="OutputOnly"/>
/// is true when only a generation's output grew (a chunk), false for anything else (created, status, control, QR,
/// message, connection, ended, deleted). <paramref name="WebhookDeliveriesOnly"/> is true when the session itself did
/// not change but one of its webhook deliveries did (an attempt was recorded: delivered, failed, due again).
/// </summary>
public readonly record struct SessionChange(SessionKind Kind, string SessionId, bool OutputOnly = false, bool WebhookDeliveriesOnly = false);

/// <summary>
/// In-process signal that a session changed, for live views (the dashboard's sessions list). A signal carries no
/// state: an observer reads the session back from <c>GenerationSessions</c> or <c>BotManager</c>. Only changes made
/// in this process are signalled. Observers are called synchronously on the thread that made the change, so they
/// must be quick and must not throw (record the id and return).
/// </summary>
public sealed class SessionChanges
{
    private readonly Lock _gate = new();
    private volatile Action<SessionChange>[] _observers = [];

    /// <summary>True when someone observes; writers skip building signals otherwise.</summary>
    public bool HasObservers => _observers.Length > 0;

    /// <summary>Calls <paramref name="observer"/> for every change from now on, until the returned handle is disposed.</summary>
    public IDisposable Subscribe(Action<SessionChange> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        lock (_gate)
        {
            _observers = [.. _observers, observer];
        }

        return new Subscription(this, observer);
    }

    /// <summary>Signals that session <paramref name="change"/> changed.</summary>
    public void Notify(SessionChange change)
    {
        foreach (var observer in _observers)
        {
            observer(change);
        }
    }

    private sealed class Subscription(SessionChanges owner, Action<SessionChange> observer) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                lock (owner._gate)
                {
                    owner._observers = owner._observers.Where(o => o != observer).ToArray();
                }
            }
        }
    }
}
