using System.Collections.Concurrent;
using Holdfast.Cluster;
using Holdfast.Generation.Backends;
using Holdfast.Sessions;
using Holdfast.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Holdfast.Generation;

/// <summary>
/// The hosted service that dispatches generation sessions on this node. At start it takes its own leases back (the
/// recovery sweep for <see cref="NodeIdentity.NodeId"/>); then it claims queued sessions under a lease (up to each
/// backend's concurrency limit), starts one <see cref="GenerationRun"/> per claim, recovers sessions whose lease
/// expired on another node, stops runs whose desired state changed, and compacts old logs. It wakes on
/// <see cref="IChangeSignals"/> (new work, stop requests), and every <see cref="GenerationOptions.PollInterval"/> for
/// changes made by other processes. Leases are renewed by a loop of their own, every
/// <see cref="ClusterOptions.RenewInterval"/> in one statement, so neither this dispatcher nor the group commits can
/// delay a renewal; a run missing from a renewal's answer (another node took the session) is stopped and its
/// writes are refused by the fence. A graceful stop ends every run as interrupted, which queues it again at once
/// (policy <c>auto</c>), so other nodes take the sessions over without waiting for the leases to expire.
/// </summary>
internal sealed class GenerationRunner : BackgroundService
{
    /// <summary>Instruction of the declared fallback for backends that cannot prefill.</summary>
    public const string FallbackInstruction = GenerationRun.FallbackInstruction;

    private const int ClaimBatch = 256;
    private const int FinishAttempts = 3;
    private const int CompactionBatch = 100;

    private readonly IRunStore _runs;
    private readonly IGenerationStore _store;
    private readonly GenerationLogWriter _writer;
    private readonly GenerationEventHub _hub;
    private readonly IChangeSignals _signals;
    private readonly GenerationBackends _backends;
    private readonly StoreSchema _schema;
    private readonly GenerationOptions _options;
    private readonly ClusterOptions _cluster;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _nodeId;
    private readonly ConcurrentDictionary<string, RunHandle> _handles = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _runningPerBackend = new(StringComparer.OrdinalIgnoreCase);
    private readonly TaskCompletionSource _recovered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<string, RunFinish> _handedBack = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _shutdown = new();
    private readonly CancellationTokenSource _renewalStop = new();
    private int _disposed;
    private Task _renewal = Task.CompletedTask;
    private readonly InProcessWake _wake = new();
    private long _nextCompaction;
    private long _nextExpirySweep;
    private long _lastRenewal;
    private bool _stopping;
    private bool _capped;

    public GenerationRunner(
        IRunStore runs,
        IGenerationStore store,
        GenerationLogWriter writer,
        GenerationEventHub hub,
        IChangeSignals signals,
        GenerationBackends backends,
        StoreSchema schema,
        IOptions<GenerationOptions> options,
        IOptions<ClusterOptions> cluster,
        NodeIdentity identity,
        TimeProvider time,
        ILogger<GenerationRunner> logger)
    {
        _runs = runs;
        _store = store;
        _writer = writer;
        _hub = hub;
        _signals = signals;
        _backends = backends;
        _schema = schema;
        _options = options.Value;
        _cluster = cluster.Value;
        _time = time;
        _logger = logger;
        _nodeId = identity.NodeId;
    }

    /// <summary>Completes once the recovery sweep at start-up is done.</summary>
#pragma warning disable VSTHRD003 // The source is ours; ExecuteAsync completes it.
    public Task Recovered => _recovered.Task;
#pragma warning restore VSTHRD003

    /// <summary>The nodes on this store (for status, <c>holdfast nodes</c> and metrics).</summary>
    public Task<IReadOnlyList<ClusterNode>> ListNodesAsync(CancellationToken cancellationToken = default) => _runs.ListNodesAsync(cancellationToken);

    /// <summary>The holder of a running session, or null.</summary>
    public Task<LeaseHolder?> FindHolderAsync(string sessionId, CancellationToken cancellationToken = default) => _runs.FindHolderAsync(sessionId, cancellationToken);

    /// <summary>The lease settings in force.</summary>
    public ClusterOptions Cluster => _cluster;

    /// <summary>This node's id (the lease holder of its runs).</summary>
    public string NodeId => _nodeId;

    /// <summary>Sessions running in this process now.</summary>
    public int RunningCount => _handles.Count;

    /// <summary>Sessions whose run ended but whose ending is not written yet (handed back after failed group commits).</summary>
    public int HandedBackCount => _handedBack.Count;

    /// <summary>Asks the dispatcher to look for queued sessions and stop requests now.</summary>
    public void Wake() => _wake.Set();

    /// <summary>True when this process runs the session.</summary>
    public bool IsRunning(string sessionId) => _handles.ContainsKey(sessionId);

    /// <summary>
    /// Stops the session's run now (its desired state changed): the upstream request is cancelled, its chunks are
    /// committed, then its status. Returns false when this process does not run it.
    /// </summary>
    public bool RequestStop(string sessionId)
    {
        if (_handles.TryGetValue(sessionId, out var handle))
        {
            handle.Stop(shutdown: false);
            return true;
        }

        return false;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var signals = _signals.Subscribe(null);
        try
        {
            await _schema.EnsureAsync(stoppingToken);
            var recovered = await _runs.RecoverAbandonedAsync(new RecoveryRequest(_nodeId, TakeOwnLeasesBack: true, _options.RecoveryPolicy), stoppingToken);
            await PublishAsync(recovered);
            if (recovered.Count > 0)
            {
                Log.GenerationRecovered(_logger, recovered.Count, _options.RecoveryPolicy);
            }

            _recovered.TrySetResult();
            _renewal = Task.Run(() => RenewLoopAsync(_renewalStop.Token), CancellationToken.None);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            _recovered.TrySetCanceled(stoppingToken);
            return;
        }
        catch (Exception ex)
        {
            _recovered.TrySetException(ex);
            throw;
        }

        // Each step fails on its own (and is retried on the next tick), so one cannot starve the others.
        Func<CancellationToken, Task>[] steps = [WriteHandedBackAsync, RecoverExpiredAsync, DispatchAsync, ReconcileStopsAsync, CompactLogsAsync];
        while (!stoppingToken.IsCancellationRequested)
        {
            foreach (var step in steps)
            {
                try
                {
                    await step(stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // The dispatcher must keep going after a store hiccup; it retries on the next tick.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    Log.GenerationDispatchFailed(_logger, ex);
                }
            }

            // Sleep until a signal (new work, a stop request) or the poll interval (changes made by other processes on
            // a shared file).
            using var interval = new CancellationTokenSource(_options.PollInterval, _time);
            using var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, interval.Token);
            await Task.WhenAny(signals.WaitAsync(tick.Token), _wake.WaitAsync(tick.Token));

            // Cancel the wait that did not finish, so it neither lingers nor takes the next wake-up.
            await tick.CancelAsync();
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _shutdown.CancelAsync();
        await base.StopAsync(cancellationToken);

        // Marked stopped before the runs end, so the nodes that take the sessions over no longer count this one when
        // they share them out (its renewals until the handover is written keep the mark).
        Volatile.Write(ref _stopping, true);
        try
        {
            await _runs.MarkNodeStoppedAsync(_nodeId, cancellationToken);
        }
#pragma warning disable CA1031 // Then the others count this node as live until its heartbeat ages; sessions it leaves are taken after a lease duration at most.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.GenerationLeaseRenewalFailed(_logger, ex, _nodeId);
        }

        var runs = _handles.Values.ToList();
        foreach (var run in runs)
        {
            run.Stop(shutdown: true);
        }

        try
        {
            await Task.WhenAll(runs.Select(r => r.Completion)).WaitAsync(cancellationToken);
            await _writer.FlushAsync(cancellationToken);
            try
            {
                await WriteHandedBackAsync(cancellationToken);
            }
#pragma warning disable CA1031 // Stopping anyway: what is still handed back is left to the recovery sweep (here at the next start, or another node's once the lease expires).
            catch (Exception ex)
#pragma warning restore CA1031
            {
                foreach (var id in _handedBack.Keys)
                {
                    Log.GenerationFinishFailed(_logger, ex, id);
                }
            }
        }
        finally
        {
            // Leases are renewed until every run's ending is written (the handover), then no more.
            await _renewalStop.CancelAsync();
#pragma warning disable VSTHRD003 // The renewal loop is ours; ExecuteAsync started it.
            await _renewal;
#pragma warning restore VSTHRD003
            try
            {
                await _runs.MarkNodeStoppedAsync(_nodeId, cancellationToken);
            }
#pragma warning disable CA1031 // Only the node list's "stopped" mark is missing then; its heartbeat ages instead.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.GenerationLeaseRenewalFailed(_logger, ex, _nodeId);
            }
        }
    }

    public override void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // A host disposed without being stopped (an embedder, a test) must not leave the renewal loop ticking on a
        // store that is gone: it is stopped here as StopAsync would (the runs themselves end with the host's token).
        _renewalStop.Cancel();
        base.Dispose();
        _shutdown.Dispose();
        _renewalStop.Dispose();
    }

    private async Task DispatchAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var chosen = new List<(string Id, RunHandle Handle)>();
            _capped = false;
            IReadOnlyList<RunClaim> claimed;
            try
            {
                claimed = await _runs.ClaimRunnableAsync(
                    new RunClaimRequest(_nodeId, _cluster.LeaseDuration, ClaimBatch), candidate => Reserve(candidate, chosen), stoppingToken);
            }
            catch
            {
                // The claim transaction rolled back: nothing was claimed, so give every slot back.
                foreach (var (id, handle) in chosen)
                {
                    Release(id, handle);
                }

                throw;
            }

            var claimedIds = claimed.Select(c => c.Lease.SessionId).ToHashSet(StringComparer.Ordinal);
            foreach (var (id, handle) in chosen.Where(c => !claimedIds.Contains(c.Id)))
            {
                Release(id, handle);
            }

            foreach (var claim in claimed)
            {
                await PublishAsync(claim.Change);
                var handle = _handles[claim.Lease.SessionId];
                handle.LeaseSetAt = _time.GetTimestamp();
                handle.Lease = claim.Lease;
                Log.GenerationClaimed(_logger, claim.Lease.SessionId, claim.Lease.FencingToken, claim.Change.Session.Attempts);
                var run = new GenerationRun(claim.Change.Session, claim.Lease.FencingToken, handle.Backend, _store, _writer, _hub, _logger);
                handle.Completion = Task.Run(() => RunAsync(run, handle), CancellationToken.None);
            }

            if (claimed.Count == 0 || _capped)
            {
                // Nothing queued, every backend with queued sessions is at its limit, or this node took its share (the
                // other live nodes take theirs; what is left is claimed on the next tick).
                return;
            }
        }
    }

    /// <summary>
    /// Inside the claim transaction: takes a backend slot and registers the run before the claim commits, so a
    /// cancel that follows the claim always finds it. Returns the continuation mode to record.
    /// </summary>
    private ClaimChoice Reserve(ClaimCandidate candidate, List<(string Id, RunHandle Handle)> chosen)
    {
        if (_handles.ContainsKey(candidate.Id))
        {
            return ClaimChoice.Skip;
        }

        // Several live nodes: take no more than this node's fair share (the sessions a dead node left are spread over
        // the survivors; the other nodes take the rest). A session left queued for a whole lease duration is taken by
        // whichever node sees it, so none waits for good on a node that cannot take it (at its backend's limit).
        if (candidate.Load is { OtherLiveNodes: > 0 } load
            && chosen.Count >= GenerationRules.ClaimShare(load, candidate.Offered)
            && _time.GetUtcNow() - candidate.QueuedSince < _cluster.LeaseDuration)
        {
            _capped = true;
            return ClaimChoice.Skip;
        }

        var backend = _backends.Get(candidate.Backend);
        lock (_runningPerBackend)
        {
            var running = _runningPerBackend.GetValueOrDefault(backend.Name);
            if (running >= backend.MaxConcurrency)
            {
                return ClaimChoice.Skip;
            }

            _runningPerBackend[backend.Name] = running + 1;
        }

        var handle = new RunHandle(backend);
        _handles[candidate.Id] = handle;
        chosen.Add((candidate.Id, handle));
        return new ClaimChoice(true, ContinuationModes.For(candidate.HasOutput, backend.SupportsPrefill));
    }

    private async Task ReconcileStopsAsync(CancellationToken cancellationToken)
    {
        if (_handles.IsEmpty)
        {
            return;
        }

        foreach (var id in await _runs.ListStopRequestedAsync(_nodeId, cancellationToken))
        {
            RequestStop(id);
        }
    }

    /// <summary>
    /// The renewal loop, on its own task: every <see cref="ClusterOptions.RenewInterval"/> it renews every lease this node
    /// holds in one statement. It waits for nothing else of the runner, and on SQLite its write goes before every
    /// waiting group commit or control, so load on the write path cannot make a lease lapse.
    /// </summary>
    private async Task RenewLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_cluster.RenewInterval, _time);
        try
        {
            do
            {
                try
                {
                    await RenewLeasesAsync(cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // Renewal must keep going after a store hiccup; it retries on the next tick.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    Log.GenerationLeaseRenewalFailed(_logger, ex, _nodeId);
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped.
        }
    }

    /// <summary>
    /// Renews this node's leases in one statement; a run whose lease is gone (another node or the recovery sweep took
    /// the session) is stopped, and its writes are refused by the fence.
    /// </summary>
    private async Task RenewLeasesAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var held = (await _runs.RenewLeasesAsync(_nodeId, _cluster.LeaseDuration, Volatile.Read(ref _stopping), cancellationToken))
            .Select(l => (l.SessionId, l.FencingToken))
            .ToHashSet();
        var previous = Interlocked.Exchange(ref _lastRenewal, started);
        var gap = TimeSpan.FromSeconds((started - previous) / (double)_time.TimestampFrequency);
        if (previous != 0 && gap > _cluster.RenewInterval + _cluster.RenewInterval)
        {
            Log.GenerationLeaseRenewalLate(_logger, (long)gap.TotalMilliseconds, (long)_cluster.RenewInterval.TotalMilliseconds);
        }

        foreach (var (id, handle) in _handles)
        {
            if (handle.Lease is not { } lease || handle.IsFinishing)
            {
                continue; // Not claimed yet, or its ending (which releases the lease) is being written.
            }

            if (handle.LeaseSetAt > started)
            {
                // Claimed after this renewal began: the renewal may have read the store before the claim was stored,
                // so the session's absence from what it renewed says nothing (it was logged as a lost lease, and the
                // fresh run stopped, when the claim landed between the two). The next renewal covers it.
                continue;
            }

            if (held.Contains((id, lease.FencingToken)))
            {
                handle.Lease = lease with { ExpiresAt = _time.GetUtcNow() + _cluster.LeaseDuration };
            }
            else
            {
                Log.GenerationLeaseLost(_logger, id, lease.FencingToken);
                handle.Stop(shutdown: false);
            }
        }
    }

    /// <summary>
    /// Every <see cref="ClusterOptions.RenewInterval"/>: sessions whose lease expired on another node (a node that died or
    /// stopped renewing) are recovered, queued again; every live node then claims its fair share of them
    /// (<see cref="GenerationRules.ClaimShare"/>). This node's own leases are left alone (it is alive and renews them).
    /// </summary>
    private async Task RecoverExpiredAsync(CancellationToken cancellationToken)
    {
        if (_time.GetTimestamp() < Interlocked.Read(ref _nextExpirySweep))
        {
            return;
        }

        Interlocked.Exchange(ref _nextExpirySweep, _time.GetTimestamp() + Ticks(_cluster.RenewInterval));
        var recovered = await _runs.RecoverAbandonedAsync(new RecoveryRequest(_nodeId, TakeOwnLeasesBack: false, _options.RecoveryPolicy), cancellationToken);
        await PublishAsync(recovered);
        if (recovered.Count > 0)
        {
            Log.GenerationTakenOver(_logger, recovered.Count, string.Join(", ", recovered.Select(r => r.Session.Id)));
        }
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    private async Task RunAsync(GenerationRun run, RunHandle handle)
    {
        var finish = await run.ExecuteAsync(handle.Token, () => handle.IsShutdown, _options.RecoveryPolicy);
        handle.IsFinishing = true;
        try
        {
            await WriteFinishAsync(finish);
        }
        finally
        {
            Release(run.SessionId, handle);
            Wake();
        }
    }

    /// <summary>
    /// Writes the end of a run through the group commit, retrying with backoff. When it still fails, the session is
    /// handed back: its slot is freed and the dispatcher writes the ending straight to the store on its next ticks,
    /// until the store answers (or, if the process stops first, the recovery sweep at the next start handles it). So
    /// no session stays <c>running</c> without a runner or a pending ending in this process. A run that lost its lease
    /// writes nothing: the session's new holder (or the recovery sweep) owns it.
    /// </summary>
    private async Task WriteFinishAsync(RunFinish finish)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                // Not cancelled by shutdown: StopAsync flushes the writer, and the writer bounds a failing commit itself.
                var change = await _writer.FinishAsync(finish, CancellationToken.None);
                _hub.ClearPending(finish.SessionId);
                await PublishAsync(change);
                return;
            }
            catch (LeaseLostException)
            {
                _hub.ClearPending(finish.SessionId);
                Log.GenerationLeaseLost(_logger, finish.SessionId, finish.FencingToken);
                return;
            }
#pragma warning disable CA1031 // A failed ending is retried, then handed back; it must never escape the run.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                if (_shutdown.IsCancellationRequested)
                {
                    // Stopping: StopAsync makes one last direct write (and logs it if that fails too; then the
                    // recovery sweep at the next start handles the session).
                    _handedBack[finish.SessionId] = finish;
                    return;
                }

                if (attempt >= FinishAttempts)
                {
                    _handedBack[finish.SessionId] = finish;
                    Log.GenerationHandedBack(_logger, ex, finish.SessionId, attempt);
                    return;
                }

                Log.GenerationFinishRetry(_logger, ex, finish.SessionId, attempt, delay.TotalMilliseconds);
                try
                {
                    await Task.Delay(delay, _time, _shutdown.Token);
                }
                catch (OperationCanceledException)
                {
                    // Stopping: one more attempt, then the session is left to StopAsync.
                }

                delay += delay;
            }
        }
    }

    /// <summary>Writes the endings of handed-back runs straight to the store (fenced: an ending whose lease is gone is dropped).</summary>
    private async Task WriteHandedBackAsync(CancellationToken cancellationToken)
    {
        while (!_handedBack.IsEmpty)
        {
            var pending = _handedBack.ToArray();
            IReadOnlyList<GenerationChange> results;
            try
            {
                results = await _runs.CommitAsync([], [.. pending.Select(p => p.Value)], cancellationToken);
            }
            catch (LeaseLostException lost)
            {
                foreach (var id in lost.SessionIds)
                {
                    _handedBack.TryRemove(id, out _);
                    _hub.ClearPending(id);
                }

                continue;
            }

            for (var i = 0; i < pending.Length; i++)
            {
                _handedBack.TryRemove(pending[i]);
                _hub.ClearPending(pending[i].Key);
                await PublishAsync(results[i]);
                Log.GenerationHandedBackWritten(_logger, pending[i].Key, results[i].Session.Status);
            }
        }
    }

    /// <summary>
    /// Applies <see cref="GenerationOptions.LogRetention"/>: merges the chunk rows of sessions finished longer ago
    /// than the retention into one chunk event each. Runs at most every max(PollInterval, min(retention, 1 min)).
    /// </summary>
    private async Task CompactLogsAsync(CancellationToken cancellationToken)
    {
        if (_options.LogRetention is not { } retention || _time.GetTimestamp() < Interlocked.Read(ref _nextCompaction))
        {
            return;
        }

        var compacted = await _store.CompactFinishedLogsAsync(_time.GetUtcNow() - retention, CompactionBatch, cancellationToken);
        if (compacted > 0)
        {
            Log.GenerationLogsCompacted(_logger, compacted, retention);
        }

        var every = compacted >= CompactionBatch
            ? TimeSpan.Zero
            : TimeSpan.FromTicks(Math.Max(_options.PollInterval.Ticks, Math.Min(retention.Ticks, TimeSpan.FromMinutes(1).Ticks)));
        Interlocked.Exchange(ref _nextCompaction, _time.GetTimestamp() + Ticks(every));
    }

    private async Task PublishAsync(IReadOnlyList<GenerationChange> changes)
    {
        foreach (var change in changes)
        {
            await PublishAsync(change);
        }
    }

    /// <summary>Fans a committed change out: the status event to live followers, and the change signals.</summary>
    private async Task PublishAsync(GenerationChange change)
    {
        if (change.StatusEvent is { } statusEvent)
        {
            _hub.Publish(statusEvent, persisted: true);
        }

        await GenerationSignals.PublishAsync(_signals, change);
    }

    private void Release(string id, RunHandle handle)
    {
        if (_handles.TryRemove(new KeyValuePair<string, RunHandle>(id, handle)))
        {
            lock (_runningPerBackend)
            {
                _runningPerBackend[handle.Backend.Name] = Math.Max(0, _runningPerBackend.GetValueOrDefault(handle.Backend.Name) - 1);
            }
        }

        handle.Dispose();
    }

    /// <summary>One run's slot: its backend, its cancellation source, its lease, and the task that ends when its status is written.</summary>
    private sealed class RunHandle : IDisposable
    {
        private readonly CancellationTokenSource _cancellation;
        private int _disposed;

        public RunHandle(GenerationBackend backend)
        {
            Backend = backend;
            _cancellation = new CancellationTokenSource();
        }

        public GenerationBackend Backend { get; }

        public CancellationToken Token => _cancellation.Token;

        public bool IsShutdown { get; private set; }

        /// <summary>The run returned; its ending is being written (and will release the lease).</summary>
        public bool IsFinishing { get; set; }

        public RunLease? Lease { get; set; }

        /// <summary>When <see cref="Lease"/> was set by the claim (a <see cref="TimeProvider"/> timestamp).</summary>
        public long LeaseSetAt { get; set; }

        public Task Completion { get; set; } = Task.CompletedTask;

        public void Stop(bool shutdown)
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            IsShutdown |= shutdown;
            try
            {
                _cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The run ended meanwhile.
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                _cancellation.Dispose();
            }
        }
    }

    /// <summary>An in-process wake-up flag the dispatcher sleeps on (set by <see cref="Wake"/>).</summary>
    private sealed class InProcessWake
    {
        private readonly System.Threading.Channels.Channel<bool> _channel =
            System.Threading.Channels.Channel.CreateBounded<bool>(new System.Threading.Channels.BoundedChannelOptions(1) { FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite });

        public void Set() => _channel.Writer.TryWrite(true);

        public async Task WaitAsync(CancellationToken cancellationToken) => await _channel.Reader.ReadAsync(cancellationToken);
    }
}
