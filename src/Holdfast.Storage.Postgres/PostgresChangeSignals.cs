using System.Collections.Concurrent;
using System.Threading.Channels;
using Npgsql;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// <see cref="IChangeSignals"/> across every node on one PostgreSQL database: <c>LISTEN/NOTIFY</c> on the channel
/// <c>holdfast_changes</c> with the payload <c>kind:sessionId</c>. Each node keeps one listening connection and fans
/// the notifications out in-process; a publish wakes this node's subscribers at once and is sent to the others in a
/// batch (one <c>pg_notify</c> round trip for everything published meanwhile, so a group commit of many sessions does
/// not cost one round trip each). When the listening connection drops, it reconnects with backoff and then wakes every
/// subscriber once, since notifications sent meanwhile are lost: listeners always re-read the store.
/// </summary>
internal sealed class PostgresChangeSignals : IChangeSignals, IAsyncDisposable
{
    /// <summary>The notification channel.</summary>
    public const string Channel = "holdfast_changes";

    private readonly PostgresDatabase _database;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<Subscription, byte>> _bySession = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Subscription, byte> _nodeWide = new();
    private readonly Channel<string> _outgoing = System.Threading.Channels.Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _sender;
    private Task? _listener;
    private int _listenerStarted;
    private int _disposed;
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PostgresChangeSignals(PostgresDatabase database, TimeProvider time)
    {
        _database = database;
        _time = time;
        _sender = Task.Run(() => SendAsync(_stopping.Token));
    }

    /// <summary>Completes once the listening connection has run <c>LISTEN</c> (the first time).</summary>
    internal Task Listening
    {
        get
        {
            StartListening();
#pragma warning disable VSTHRD003 // The source is ours; the listening loop completes it.
            return _listening.Task;
#pragma warning restore VSTHRD003
        }
    }

    public ValueTask PublishAsync(ChangeSignal signal, CancellationToken cancellationToken = default)
    {
        Deliver(signal);
        _outgoing.Writer.TryWrite(Format(signal));
        return ValueTask.CompletedTask;
    }

    public IChangeSubscription Subscribe(string? sessionId)
    {
        StartListening();
        var subscription = new Subscription(this, sessionId);
        if (sessionId is null)
        {
            _nodeWide.TryAdd(subscription, 0);
        }
        else
        {
            _bySession.GetOrAdd(sessionId, _ => new ConcurrentDictionary<Subscription, byte>()).TryAdd(subscription, 0);
        }

        return subscription;
    }

    public async ValueTask DisposeAsync()
    {
        // Idempotent: the container disposes it both as IChangeSignals and through its PostgresStore.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _outgoing.Writer.TryComplete();
        await _stopping.CancelAsync();
        try
        {
#pragma warning disable VSTHRD003 // Both loops are ours, started in this instance; they end on _stopping.
            await _sender;
            if (_listener is not null)
            {
                await _listener;
            }
#pragma warning restore VSTHRD003
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }

        _stopping.Dispose();
    }

    private void StartListening()
    {
        if (Interlocked.Exchange(ref _listenerStarted, 1) == 0)
        {
            _listener = Task.Run(() => ListenAsync(_stopping.Token));
        }
    }

    internal static string Format(ChangeSignal signal) => $"{signal.Kind}:{signal.SessionId}";

    internal static ChangeSignal? Parse(string payload)
    {
        var colon = payload.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || !Enum.TryParse<ChangeKind>(payload.AsSpan(0, colon), out var kind))
        {
            return null;
        }

        var id = payload[(colon + 1)..];
        return new ChangeSignal(kind, id.Length == 0 ? null : id);
    }

    private void Deliver(ChangeSignal signal)
    {
        if (signal.Kind is ChangeKind.Runnable or ChangeKind.StopRequested)
        {
            foreach (var subscription in _nodeWide.Keys)
            {
                subscription.Signal();
            }
        }

        if (signal.SessionId is not null && _bySession.TryGetValue(signal.SessionId, out var subscribers))
        {
            foreach (var subscription in subscribers.Keys)
            {
                subscription.Signal();
            }
        }
    }

    private void WakeEveryone()
    {
        foreach (var subscription in _nodeWide.Keys.Concat(_bySession.Values.SelectMany(s => s.Keys)))
        {
            subscription.Signal();
        }
    }

    private void Remove(Subscription subscription)
    {
        if (subscription.SessionId is null)
        {
            _nodeWide.TryRemove(subscription, out _);
        }
        else if (_bySession.TryGetValue(subscription.SessionId, out var subscribers))
        {
            subscribers.TryRemove(subscription, out _);
            if (subscribers.IsEmpty)
            {
                _bySession.TryRemove(new KeyValuePair<string, ConcurrentDictionary<Subscription, byte>>(subscription.SessionId, subscribers));
            }
        }
    }

    private async Task SendAsync(CancellationToken cancellationToken)
    {
        var batch = new HashSet<string>(StringComparer.Ordinal);
        while (await _outgoing.Reader.WaitToReadAsync(cancellationToken))
        {
            while (batch.Count < 10_000 && _outgoing.Reader.TryRead(out var payload))
            {
                batch.Add(payload);
            }

            try
            {
                await _database.ReadAsync(
                    async (connection, ct) =>
                    {
                        await using var notify = new NpgsqlCommand("SELECT count(pg_notify(@channel, p)) FROM unnest(@payloads) AS p", connection);
                        notify.Parameters.Add(Pg.Text("channel", Channel));
                        notify.Parameters.Add(Pg.TextArray("payloads", [.. batch]));
                        return await notify.ExecuteScalarAsync(ct);
                    },
                    cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Signals are hints: other nodes fall back on their periodic re-reads (lease renewal, reconnect wake-up).
            }

            batch.Clear();
        }
    }

    private async Task ListenAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        var first = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _database.DataSource.OpenConnectionAsync(cancellationToken);
                connection.Notification += (_, e) =>
                {
                    if (Parse(e.Payload) is { } signal)
                    {
                        Deliver(signal);
                    }
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(cancellationToken);
                }

                _listening.TrySetResult();
                if (!first)
                {
                    WakeEveryone();
                }

                first = false;
                delay = TimeSpan.FromMilliseconds(100);
                while (true)
                {
                    await connection.WaitAsync(cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                WakeEveryone();
                first = false;
                try
                {
                    await Task.Delay(delay, _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    /// <summary>
    /// One listener's wake-ups: a signal sets a flag and completes the waiter, if any; a wait returns at once while the
    /// flag is set and clears it when it returns. The flag is set even when a waiter is completed: a wait cancelled
    /// before (the dispatcher waits on a signal, its own wake-up and the poll interval at once and cancels the loser)
    /// leaves its waiter behind, and a signal that only completed that abandoned waiter was lost until the next poll.
    /// </summary>
    private sealed class Subscription : IChangeSubscription
    {
        private readonly PostgresChangeSignals _owner;
        private readonly Lock _gate = new();
        private TaskCompletionSource? _waiter;
        private bool _pending;

        public Subscription(PostgresChangeSignals owner, string? sessionId)
        {
            _owner = owner;
            SessionId = sessionId;
        }

        public string? SessionId { get; }

        public void Signal()
        {
            TaskCompletionSource? waiter;
            lock (_gate)
            {
                _pending = true;
                waiter = _waiter;
                _waiter = null;
            }

            waiter?.TrySetResult();
        }

        public Task WaitAsync(CancellationToken cancellationToken = default)
        {
            Task task;
            lock (_gate)
            {
                if (_pending)
                {
                    _pending = false;
                    return Task.CompletedTask;
                }

                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                task = _waiter.Task;
            }

            return WaitCoreAsync(task, cancellationToken);
        }

        public void Dispose()
        {
            _owner.Remove(this);
            TaskCompletionSource? waiter;
            lock (_gate)
            {
                waiter = _waiter;
                _waiter = null;
            }

            waiter?.TrySetCanceled();
        }

        private async Task WaitCoreAsync(Task task, CancellationToken cancellationToken)
        {
            await task.WaitAsync(cancellationToken).ConfigureAwait(false);

            // Woken: this wake-up consumes the flag (a signal after this point sets it again for the next wait).
            lock (_gate)
            {
                _pending = false;
            }
        }
    }
}
