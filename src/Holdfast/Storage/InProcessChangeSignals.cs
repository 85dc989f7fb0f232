using System.Collections.Concurrent;

namespace Holdfast.Storage;

/// <summary>
/// <see cref="IChangeSignals"/> inside one process: what the embedded store uses (one node holds every session), and
/// what a networked provider's listener fans its notifications out through. Publishing never blocks: it sets a flag
/// and completes the waiter of each subscription.
/// </summary>
public sealed class InProcessChangeSignals : IChangeSignals
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<Subscription, byte>> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Subscription, byte> _nodeWide = new();

    public ValueTask PublishAsync(ChangeSignal signal, CancellationToken cancellationToken = default)
    {
        Publish(signal);
        return ValueTask.CompletedTask;
    }

    /// <summary>Delivers <paramref name="signal"/> to this process's subscribers (synchronously, without blocking).</summary>
    public void Publish(ChangeSignal signal)
    {
        if (signal.Kind is ChangeKind.Runnable or ChangeKind.StopRequested)
        {
            foreach (var subscription in _nodeWide.Keys)
            {
                subscription.Signal();
            }
        }

        if (signal.SessionId is { } id && _sessions.TryGetValue(id, out var listeners))
        {
            foreach (var subscription in listeners.Keys)
            {
                subscription.Signal();
            }
        }
    }

    public IChangeSubscription Subscribe(string? sessionId)
    {
        var subscription = new Subscription(this, sessionId);
        if (sessionId is null)
        {
            _nodeWide[subscription] = 0;
        }
        else
        {
            _sessions.AddOrUpdate(
                sessionId,
                _ => new ConcurrentDictionary<Subscription, byte> { [subscription] = 0 },
                (_, listeners) =>
                {
                    listeners[subscription] = 0;
                    return listeners;
                });
        }

        return subscription;
    }

    /// <summary>Sessions with listeners now (for tests).</summary>
    internal int SessionTopicCount => _sessions.Count;

    private void Remove(Subscription subscription, string? sessionId)
    {
        if (sessionId is null)
        {
            _nodeWide.TryRemove(subscription, out _);
            return;
        }

        if (_sessions.TryGetValue(sessionId, out var listeners))
        {
            listeners.TryRemove(subscription, out _);
            if (listeners.IsEmpty)
            {
                _sessions.TryRemove(new KeyValuePair<string, ConcurrentDictionary<Subscription, byte>>(sessionId, listeners));
            }
        }
    }

    private sealed class Subscription(InProcessChangeSignals owner, string? sessionId) : IChangeSubscription
    {
        private readonly Lock _gate = new();
        private TaskCompletionSource? _waiter;
        private int _waits;
        private bool _signalled;

        public void Signal()
        {
            lock (_gate)
            {
                // Taken by the waits in progress, if any; otherwise kept for the next wait. Completed under the lock
                // (continuations run elsewhere), so a wait that gives up at the same moment can tell it was taken. The
                // flag is never reset after a wake-up: a signal arriving between a waiter's completion and its
                // continuation stays for the next wait.
                if (_waiter is { } waiter && _waits > 0)
                {
                    _waiter = null;
                    _waits = 0;
                    waiter.TrySetResult();
                }
                else
                {
                    _signalled = true;
                }
            }
        }

        public Task WaitAsync(CancellationToken cancellationToken = default)
        {
            Task task;
            lock (_gate)
            {
                if (_signalled)
                {
                    _signalled = false;
                    return Task.CompletedTask;
                }

                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waits++;
                task = _waiter.Task;
            }

            return cancellationToken.CanBeCanceled ? WaitCoreAsync(task, cancellationToken) : task;
        }

        public void Dispose()
        {
            owner.Remove(this, sessionId);
            TaskCompletionSource? waiter;
            lock (_gate)
            {
                waiter = _waiter;
                _waiter = null;
                _waits = 0;
            }

            waiter?.TrySetCanceled();
        }

        private async Task WaitCoreAsync(Task task, CancellationToken cancellationToken)
        {
            try
            {
                await task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                lock (_gate)
                {
                    if (task.IsCompletedSuccessfully)
                    {
                        // A signal took this wait just as it gave up: kept for the next wait.
                        _signalled = true;
                    }
                    else if (ReferenceEquals(_waiter?.Task, task))
                    {
                        // No longer waiting: a signal from now on is kept for the next wait.
                        _waits--;
                    }
                }

                throw;
            }
        }
    }
}
