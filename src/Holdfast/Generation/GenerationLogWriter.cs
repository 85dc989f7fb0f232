using System.Diagnostics;
using System.Threading.Channels;
using Holdfast.Storage.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Holdfast.Generation;

/// <summary>
/// Write-behind group commit: runners hand chunks and run endings over without waiting; one loop commits whatever
/// is waiting, for all sessions, in one transaction every <see cref="GenerationOptions.FlushInterval"/> or as soon
/// as <see cref="GenerationOptions.FlushMaxChunks"/> chunks wait. A run ending is committed after that run's chunks,
/// in the same or a later transaction, so a paused or cancelled session always has its partial output persisted.
/// </summary>
internal sealed class GenerationLogWriter : IAsyncDisposable
{
    private readonly Channel<object> _queue = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SqliteGenerationStore _store;
    private readonly GenerationEventHub _hub;
    private readonly GenerationOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;
    private long _commits;
    private long _chunksCommitted;

    public GenerationLogWriter(SqliteGenerationStore store, GenerationEventHub hub, IOptions<GenerationOptions> options, TimeProvider time, ILogger<GenerationLogWriter> logger)
    {
        _store = store;
        _hub = hub;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _loop = Task.Run(() => RunAsync(_stopping.Token));
    }

    /// <summary>Group commits done so far.</summary>
    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Chunks persisted so far.</summary>
    public long ChunksCommitted => Interlocked.Read(ref _chunksCommitted);

    /// <summary>Queues a chunk for the next group commit (returns at once).</summary>
    public void Enqueue(ChunkAppend chunk)
    {
        if (!_queue.Writer.TryWrite(chunk))
        {
            throw new InvalidOperationException("The generation log writer has stopped.");
        }
    }

    /// <summary>
    /// Queues the end of a run behind its chunks. The task completes once it is committed, with the change (or null
    /// when the run no longer owned the session).
    /// </summary>
    public Task<GenerationChange?> FinishAsync(RunFinish finish)
    {
        var pending = new PendingFinish(finish);
        if (!_queue.Writer.TryWrite(pending))
        {
            throw new InvalidOperationException("The generation log writer has stopped.");
        }

#pragma warning disable VSTHRD003 // The source is ours; the commit loop completes it.
        return pending.Completion.Task;
#pragma warning restore VSTHRD003
    }

    /// <summary>Completes once everything queued before the call is committed.</summary>
    public Task FlushAsync()
    {
        var barrier = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite(barrier))
        {
            return Task.CompletedTask;
        }

#pragma warning disable VSTHRD003 // The source is ours; the commit loop completes it.
        return barrier.Task;
#pragma warning restore VSTHRD003
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        try
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            await _stopping.CancelAsync();
        }

        _stopping.Dispose();
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var reader = _queue.Reader;
        var chunks = new List<ChunkAppend>();
        var finishes = new List<PendingFinish>();
        var barriers = new List<TaskCompletionSource>();
        while (await reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
        {
            // Gather for at most FlushInterval after the first item, or until FlushMaxChunks chunks wait.
            var started = _time.GetTimestamp();
            while (true)
            {
                while (chunks.Count < _options.FlushMaxChunks && reader.TryRead(out var item))
                {
                    switch (item)
                    {
                        case ChunkAppend chunk:
                            chunks.Add(chunk);
                            break;
                        case PendingFinish finish:
                            finishes.Add(finish);
                            break;
                        case TaskCompletionSource barrier:
                            barriers.Add(barrier);
                            break;
                    }
                }

                var left = _options.FlushInterval - _time.GetElapsedTime(started);
                if (chunks.Count >= _options.FlushMaxChunks || left <= TimeSpan.Zero || barriers.Count > 0)
                {
                    break;
                }

                using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                wait.CancelAfter(left);
                try
                {
                    if (!await reader.WaitToReadAsync(wait.Token).ConfigureAwait(false))
                    {
                        break;
                    }
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                    break;
                }
            }

            await CommitWithRetryAsync(chunks, finishes, stoppingToken).ConfigureAwait(false);
            foreach (var barrier in barriers)
            {
                barrier.TrySetResult();
            }

            chunks.Clear();
            finishes.Clear();
            barriers.Clear();
        }
    }

    private async Task CommitWithRetryAsync(List<ChunkAppend> chunks, List<PendingFinish> finishes, CancellationToken stoppingToken)
    {
        if (chunks.Count == 0 && finishes.Count == 0)
        {
            return;
        }

        // One run's chunks together, in seq order, so each session gets one output append per commit.
        var ordered = chunks.Count > 1 ? chunks.GroupBy(c => (c.SessionId, c.Attempt)).SelectMany(g => g).ToList() : chunks;
        var delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                var watch = Stopwatch.StartNew();
                var results = await _store.CommitAsync(ordered, finishes.Select(f => f.Finish).ToList(), stoppingToken).ConfigureAwait(false);
                Interlocked.Increment(ref _commits);
                Interlocked.Add(ref _chunksCommitted, ordered.Count);
                Log.GenerationCommitted(_logger, ordered.Count, finishes.Count, watch.ElapsedMilliseconds);
                foreach (var group in ordered.GroupBy(c => c.SessionId))
                {
                    _hub.MarkPersisted(group.Key, group.Max(c => c.Seq));
                }

                for (var i = 0; i < finishes.Count; i++)
                {
                    finishes[i].Completion.TrySetResult(results[i]);
                }

                return;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                foreach (var finish in finishes)
                {
                    finish.Completion.TrySetCanceled(stoppingToken);
                }

                return;
            }
#pragma warning disable CA1031 // The commit loop must survive any store failure: it keeps the batch and retries.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.GenerationCommitFailed(_logger, ex, ordered.Count, finishes.Count, delay.TotalMilliseconds);
                await Task.Delay(delay, _time, stoppingToken).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5_000));
            }
        }
    }



    private sealed class PendingFinish(RunFinish finish)
    {
        public RunFinish Finish { get; } = finish;

        public TaskCompletionSource<GenerationChange?> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
