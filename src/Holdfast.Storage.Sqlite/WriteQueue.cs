using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary>
/// The writes waiting for the one writer path of a <see cref="SqliteDatabase"/>. One batch runs at a time; a batch
/// takes every write waiting when it starts (up to <see cref="MaxBatch"/>), priority ones (lease renewal) first, then
/// the others in arrival order. So a queue of group commits and controls delays a renewal by at most the batch in
/// progress, and writes that arrive together share one transaction and one fsync.
/// </summary>
internal sealed class WriteQueue
{
    /// <summary>Most writes one transaction takes; the rest wait for the next one.</summary>
    internal const int MaxBatch = 256;

    private readonly Lock _lock = new();
    private readonly LinkedList<PendingWrite> _ordinary = new();
    private readonly LinkedList<PendingWrite> _priority = new();
    private bool _running;

    /// <summary>
    /// Queues <paramref name="write"/>. True when no batch is running: the caller now runs batches until
    /// <see cref="TakeBatch"/> gives none (or hands that on).
    /// </summary>
    public bool Enqueue(PendingWrite write, bool priority)
    {
        lock (_lock)
        {
            write.Node = (priority ? _priority : _ordinary).AddLast(write);
            if (_running)
            {
                return false;
            }

            _running = true;
            return true;
        }
    }

    /// <summary>Puts writes of a failed batch that never ran back at the head of the queue, in their order.</summary>
    public void Requeue(IReadOnlyList<PendingWrite> writes)
    {
        lock (_lock)
        {
            for (var i = writes.Count - 1; i >= 0; i--)
            {
                writes[i].Node = _priority.AddFirst(writes[i]);
            }
        }
    }

    /// <summary>
    /// The next batch, taken off the queue; empty when nothing waits, and then no batch runs any more (the next
    /// <see cref="Enqueue"/> starts one).
    /// </summary>
    public List<PendingWrite> TakeBatch()
    {
        var batch = new List<PendingWrite>();
        lock (_lock)
        {
            Take(_priority, batch);
            Take(_ordinary, batch);
            if (batch.Count == 0)
            {
                _running = false;
            }
        }

        return batch;
    }

    /// <summary>Takes <paramref name="write"/> out of the queue when it is still there (its caller gave up). True when it was.</summary>
    public bool Remove(PendingWrite write)
    {
        lock (_lock)
        {
            if (write.Node?.List is not { } list)
            {
                return false;
            }

            list.Remove(write.Node);
            write.Node = null;
            return true;
        }
    }

    private static void Take(LinkedList<PendingWrite> queue, List<PendingWrite> batch)
    {
        while (batch.Count < MaxBatch && queue.First is { } first)
        {
            queue.RemoveFirst();
            first.Value.Node = null;
            batch.Add(first.Value);
        }
    }
}

/// <summary>One write waiting for, or running in, a batch of <see cref="WriteQueue"/>.</summary>
internal abstract class PendingWrite
{
    /// <summary>Where it waits in the queue; null once taken (or removed). Guarded by the queue's lock.</summary>
    public LinkedListNode<PendingWrite>? Node { get; set; }

    /// <summary>Runs the caller's work in the batch's transaction; its result is kept until <see cref="Complete"/>.</summary>
    public abstract Task RunAsync(SqliteConnection connection, SqliteTransaction transaction);

    /// <summary>The transaction committed: hands the caller its result.</summary>
    public abstract void Complete();

    /// <summary>Hands the caller <paramref name="exception"/>: its work, or the transaction it ran in, failed.</summary>
    public abstract void Fail(Exception exception);

    /// <summary>The caller gave up before its work ran.</summary>
    public abstract bool IsCanceled { get; }
}

/// <summary>A write whose work returns a <typeparamref name="T"/>.</summary>
internal sealed class PendingWrite<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken) : PendingWrite
{
    private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private T? _result;

#pragma warning disable VSTHRD003 // Completed by the batch that runs this write.
    public Task<T> Completion => _completion.Task;
#pragma warning restore VSTHRD003

    public override bool IsCanceled => cancellationToken.IsCancellationRequested;

    public override async Task RunAsync(SqliteConnection connection, SqliteTransaction transaction)
    {
#pragma warning disable VSTHRD003 // The caller's work, started here.
        _result = await work(connection, transaction).ConfigureAwait(false);
#pragma warning restore VSTHRD003
    }

    public override void Complete() => _completion.TrySetResult(_result!);

    public override void Fail(Exception exception)
    {
        if (exception is OperationCanceledException && cancellationToken.IsCancellationRequested)
        {
            _completion.TrySetCanceled(cancellationToken);
        }
        else
        {
            _completion.TrySetException(exception);
        }
    }
}
