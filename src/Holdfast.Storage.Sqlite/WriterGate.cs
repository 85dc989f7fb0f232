namespace Holdfast.Storage.Sqlite;

/// <summary>
/// The one writer path of a <see cref="SqliteDatabase"/>: one holder at a time, waiters served in arrival order,
/// except that a priority waiter (lease renewal) goes before every ordinary one. So a queue of group commits and
/// controls can delay a renewal by at most the one transaction in progress, never by the whole queue.
/// </summary>
internal sealed class WriterGate
{
    private readonly Lock _lock = new();
    private readonly LinkedList<TaskCompletionSource> _ordinary = new();
    private readonly LinkedList<TaskCompletionSource> _priority = new();
    private bool _held;

    /// <summary>Completes when the caller holds the gate; the caller must <see cref="Release"/> it.</summary>
    public Task WaitAsync(bool priority, CancellationToken cancellationToken)
    {
        TaskCompletionSource waiter;
        LinkedListNode<TaskCompletionSource> node;
        lock (_lock)
        {
            if (!_held)
            {
                _held = true;
                return Task.CompletedTask;
            }

            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            node = (priority ? _priority : _ordinary).AddLast(waiter);
        }

        if (!cancellationToken.CanBeCanceled)
        {
            return waiter.Task;
        }

        return WaitCancellableAsync(waiter, node, cancellationToken);
    }

    /// <summary>Hands the gate to the next waiter (priority first), or frees it.</summary>
    public void Release()
    {
        TaskCompletionSource? next = null;
        lock (_lock)
        {
            var queue = _priority.Count > 0 ? _priority : _ordinary;
            if (queue.First is { } first)
            {
                queue.RemoveFirst();
                next = first.Value;
            }
            else
            {
                _held = false;
            }
        }

        next?.SetResult();
    }

    private async Task WaitCancellableAsync(TaskCompletionSource waiter, LinkedListNode<TaskCompletionSource> node, CancellationToken cancellationToken)
    {
        await using (cancellationToken.Register(() =>
        {
            lock (_lock)
            {
                if (node.List is { } list)
                {
                    list.Remove(node);
                    waiter.TrySetCanceled(cancellationToken);
                }
            }
        }))
        {
#pragma warning disable VSTHRD003 // The waiter is ours; Release completes it.
            await waiter.Task.ConfigureAwait(false);
#pragma warning restore VSTHRD003
        }
    }
}
