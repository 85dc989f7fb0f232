using System.Collections.Concurrent;
using System.Threading.Channels;
using Holdfast.Generation.Backends;
using Holdfast.Storage.Sqlite;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Holdfast.Generation;

/// <summary>
/// The hosted service that owns running generation sessions in this process. At start it runs the recovery sweep;
/// then it claims queued sessions (up to each backend's concurrency limit), streams each from its backend with one
/// cancellation source per session, fans chunks out to live followers at once and hands them to the
/// <see cref="GenerationLogWriter"/> for group commit. Pause and cancel cancel the run's token, which closes the
/// upstream stream; the run then commits its last chunks and its new status.
/// </summary>
internal sealed class GenerationRunner : BackgroundService
{
    /// <summary>Instruction of the declared fallback for backends that cannot prefill.</summary>
    public const string FallbackInstruction =
        "Continue your previous answer exactly where it stopped, without repeating or summarising anything. Output only the continuation.";

    private const int ClaimBatch = 256;
    private const int MaxPreviousSessions = 32;
    private const int FinishAttempts = 3;
    private const int CompactionBatch = 100;

    private readonly SqliteGenerationStore _store;
    private readonly GenerationLogWriter _writer;
    private readonly GenerationEventHub _hub;
    private readonly GenerationBackends _backends;
    private readonly SqliteDatabase _database;
    private readonly GenerationOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, RunHandle> _runs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _runningPerBackend = new(StringComparer.OrdinalIgnoreCase);
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly TaskCompletionSource _recovered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<string, RunFinish> _handedBack = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _shutdown = new();
    private long _nextCompaction;

    public GenerationRunner(
        SqliteGenerationStore store,
        GenerationLogWriter writer,
        GenerationEventHub hub,
        GenerationBackends backends,
        SqliteDatabase database,
        IOptions<GenerationOptions> options,
        TimeProvider time,
        ILogger<GenerationRunner> logger)
    {
        _store = store;
        _writer = writer;
        _hub = hub;
        _backends = backends;
        _database = database;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    /// <summary>Completes once the recovery sweep at start-up is done.</summary>
#pragma warning disable VSTHRD003 // The source is ours; ExecuteAsync completes it.
    public Task Recovered => _recovered.Task;
#pragma warning restore VSTHRD003

    /// <summary>Sessions running in this process now.</summary>
    public int RunningCount => _runs.Count;

    /// <summary>Asks the dispatcher to look for queued sessions now.</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    /// <summary>True when this process runs the session.</summary>
    public bool IsRunning(string sessionId) => _runs.ContainsKey(sessionId);

    /// <summary>
    /// Stops the session's run now (its desired state changed): the upstream request is cancelled, its chunks are
    /// committed, then its status. Returns false when this process does not run it.
    /// </summary>
    public bool RequestStop(string sessionId)
    {
        if (_runs.TryGetValue(sessionId, out var handle))
        {
            handle.Stop(shutdown: false);
            return true;
        }

        return false;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await WaitForSchemaAsync(stoppingToken);
            var recovered = await _store.RecoverInterruptedAsync(_options.RecoveryPolicy, stoppingToken);
            foreach (var change in recovered)
            {
                PublishStatus(change);
            }

            if (recovered.Count > 0)
            {
                Log.GenerationRecovered(_logger, recovered.Count, _options.RecoveryPolicy);
            }

            _recovered.TrySetResult();
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
        Func<CancellationToken, Task>[] steps = [WriteHandedBackAsync, DispatchAsync, ReconcileStopsAsync, CompactLogsAsync];
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

            using var interval = new CancellationTokenSource(_options.PollInterval, _time);
            using var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, interval.Token);
            try
            {
                await _wake.Reader.ReadAsync(tick.Token);
            }
            catch (OperationCanceledException)
            {
                // Poll interval elapsed (or stopping).
            }
        }
    }

    /// <summary>Sessions whose run ended but whose ending is not written yet (handed back after failed group commits).</summary>
    public int HandedBackCount => _handedBack.Count;

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _shutdown.CancelAsync();
        await base.StopAsync(cancellationToken);
        var runs = _runs.Values.ToList();
        foreach (var run in runs)
        {
            run.Stop(shutdown: true);
        }

        await Task.WhenAll(runs.Select(r => r.Completion)).WaitAsync(cancellationToken);
        await _writer.FlushAsync(cancellationToken);
        try
        {
            await WriteHandedBackAsync(cancellationToken);
        }
#pragma warning disable CA1031 // Stopping anyway: what is still handed back is left to the recovery sweep at the next start.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            foreach (var id in _handedBack.Keys)
            {
                Log.GenerationFinishFailed(_logger, ex, id);
            }
        }
    }

    public override void Dispose()
    {
        base.Dispose();
        _shutdown.Dispose();
    }

    private async Task WaitForSchemaAsync(CancellationToken cancellationToken)
    {
        var warned = false;
        while (true)
        {
            var status = await _database.GetMigrationStatusAsync(cancellationToken);
            SqliteDatabase.ThrowOnProblems(status);
            if (status.Pending.Count == 0)
            {
                return;
            }

            if (!warned)
            {
                Log.GenerationWaitingForMigrations(_logger, status.Pending.Count);
                warned = true;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), _time, cancellationToken);
        }
    }

    private async Task DispatchAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var chosen = new List<(string Id, RunHandle Handle)>();
            IReadOnlyList<GenerationChange> claimed;
            try
            {
                claimed = await _store.ClaimRunnableAsync(candidate => Reserve(candidate, chosen), ClaimBatch, stoppingToken);
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

            var claimedIds = claimed.Select(c => c.Session.Id).ToHashSet(StringComparer.Ordinal);
            foreach (var (id, handle) in chosen.Where(c => !claimedIds.Contains(c.Id)))
            {
                Release(id, handle);
            }

            foreach (var change in claimed)
            {
                PublishStatus(change);
                var handle = _runs[change.Session.Id];
                handle.Completion = Task.Run(() => RunAsync(change.Session, handle), CancellationToken.None);
            }

            if (claimed.Count == 0)
            {
                return; // Nothing queued, or every backend with queued sessions is at its limit.
            }
        }
    }

    /// <summary>
    /// Inside the claim transaction: takes a backend slot and registers the run before the claim commits, so a
    /// cancel that follows the claim always finds it. Returns the continuation mode to record.
    /// </summary>
    private (bool Take, string? Continuation) Reserve(ClaimCandidate candidate, List<(string Id, RunHandle Handle)> chosen)
    {
        if (_runs.ContainsKey(candidate.Id))
        {
            return (false, null);
        }

        var backend = _backends.Get(candidate.Backend);
        lock (_runningPerBackend)
        {
            var running = _runningPerBackend.GetValueOrDefault(backend.Name);
            if (running >= backend.MaxConcurrency)
            {
                return (false, null);
            }

            _runningPerBackend[backend.Name] = running + 1;
        }

        var handle = new RunHandle(backend);
        _runs[candidate.Id] = handle;
        chosen.Add((candidate.Id, handle));
        return (true, candidate.HasOutput ? (backend.SupportsPrefill ? "prefill" : "fallback:instruction") : null);
    }

    private async Task ReconcileStopsAsync(CancellationToken cancellationToken)
    {
        if (_runs.IsEmpty)
        {
            return;
        }

        foreach (var id in await _store.ListStopRequestedAsync(cancellationToken))
        {
            RequestStop(id);
        }
    }

    private async Task RunAsync(GenerationSession session, RunHandle handle)
    {
        var backend = handle.Backend;
        var seq = session.LastSeq;
        var chunks = 0L;
        string? finishReason = null;
        long? inputTokens = null;
        RunFinish finish;
        try
        {
            var messages = await BuildConversationAsync(session, backend, handle.Token);
            var remaining = session.Parameters.MaxTokens is { } max ? max - session.Usage.OutputTokens : (long?)null;
            if (remaining <= 0)
            {
                finish = new RunFinish(session.Id, session.Attempts, GenerationCommand.Complete, seq, FinishReason: "length");
            }
            else
            {
                var options = new ChatOptions
                {
                    ModelId = string.Equals(session.Model, "default", StringComparison.OrdinalIgnoreCase) ? backend.DefaultModel ?? session.Model : session.Model,
                    Temperature = (float?)session.Parameters.Temperature,
                    TopP = (float?)session.Parameters.TopP,
                    MaxOutputTokens = remaining is { } r ? (int)Math.Min(r, int.MaxValue) : null,
                    Seed = session.Parameters.Seed,
                    StopSequences = session.Parameters.Stop?.ToList(),
                };
                await foreach (var update in backend.Client.GetStreamingResponseAsync(messages, options, handle.Token).WithCancellation(handle.Token))
                {
                    var text = update.Text;
                    if (!string.IsNullOrEmpty(text))
                    {
                        seq++;
                        chunks++;
                        _hub.Publish(GenerationLogEvent.Chunk(session.Id, seq, text), persisted: false);
                        _writer.Enqueue(new ChunkAppend(session.Id, session.Attempts, seq, text));
                    }

                    if (update.FinishReason is { } reason)
                    {
                        finishReason = reason.Value;
                    }

                    foreach (var usage in update.Contents.OfType<UsageContent>())
                    {
                        inputTokens = usage.Details.InputTokenCount ?? inputTokens;
                    }
                }

                finish = new RunFinish(
                    session.Id, session.Attempts, GenerationCommand.Complete, seq, FinishReason: finishReason ?? "stop", InputTokens: inputTokens, Recovery: _options.RecoveryPolicy);
            }
        }
        catch (Exception) when (handle.Token.IsCancellationRequested)
        {
            // Pause, cancel or shutdown cancelled the run's token. However the abort surfaces (an
            // OperationCanceledException, or an IOException/HttpRequestException from a client whose stream was
            // torn down), it is a stop, never a backend failure.
            finish = new RunFinish(
                session.Id, session.Attempts, handle.IsShutdown ? GenerationCommand.Interrupt(_options.RecoveryPolicy) : GenerationCommand.Stop, seq, InputTokens: inputTokens);
        }
#pragma warning disable CA1031 // Any backend failure ends the run as failed with its message; the session stays resumable.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            var message = ex is GenerationBackendException or Sessions.HoldfastException
                ? ex.Message
                : $"Backend '{backend.Name}' failed: {ex.GetType().Name}: {ex.Message}. The partial output is kept and the session can be resumed.";
            Log.GenerationRunFailed(_logger, session.Id, backend.Name, chunks, message);
            finish = new RunFinish(session.Id, session.Attempts, GenerationCommand.Fail, seq, Error: message, InputTokens: inputTokens);
        }

        try
        {
            await WriteFinishAsync(finish);
        }
        finally
        {
            Release(session.Id, handle);
            Wake();
        }
    }

    /// <summary>
    /// Writes the end of a run through the group commit, retrying with backoff. When it still fails, the session is
    /// handed back: its slot is freed and the dispatcher writes the ending straight to the store on its next ticks,
    /// until the store answers (or, if the process stops first, the recovery sweep at the next start handles it). So
    /// no session stays <c>running</c> without a runner or a pending ending in this process.
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
                if (change is not null)
                {
                    PublishStatus(change);
                }

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

    /// <summary>Writes the endings of handed-back runs straight to the store (fenced by attempt, so a stale one changes nothing).</summary>
    private async Task WriteHandedBackAsync(CancellationToken cancellationToken)
    {
        if (_handedBack.IsEmpty)
        {
            return;
        }

        var pending = _handedBack.ToArray();
        var results = await _store.CommitAsync([], [.. pending.Select(p => p.Value)], cancellationToken);
        for (var i = 0; i < pending.Length; i++)
        {
            _handedBack.TryRemove(pending[i]);
            _hub.ClearPending(pending[i].Key);
            if (results[i] is { } change)
            {
                PublishStatus(change);
                Log.GenerationHandedBackWritten(_logger, pending[i].Key, change.Session.Status);
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
        Interlocked.Exchange(ref _nextCompaction, _time.GetTimestamp() + (long)(every.TotalSeconds * _time.TimestampFrequency));
    }

    private async Task<List<ChatMessage>> BuildConversationAsync(GenerationSession session, GenerationBackend backend, CancellationToken cancellationToken)
    {
        var chain = new List<GenerationSession>();
        var previousId = session.PreviousSessionId;
        while (previousId is not null && chain.Count < MaxPreviousSessions)
        {
            var previous = await _store.FindAsync(previousId, session.Owner, cancellationToken);
            if (previous is null)
            {
                break;
            }

            chain.Add(previous);
            previousId = previous.PreviousSessionId;
        }

        var messages = new List<ChatMessage>();
        for (var i = chain.Count - 1; i >= 0; i--)
        {
            messages.AddRange(chain[i].Input.Select(ToChatMessage));
            if (chain[i].Output.Length > 0)
            {
                messages.Add(new ChatMessage(ChatRole.Assistant, chain[i].Output));
            }
        }

        messages.AddRange(session.Input.Select(ToChatMessage));
        if (session.Output.Length > 0)
        {
            messages.Add(new ChatMessage(ChatRole.Assistant, session.Output));
            if (!backend.SupportsPrefill)
            {
                messages.Add(new ChatMessage(ChatRole.User, FallbackInstruction));
            }
        }

        return messages;
    }

    private static ChatMessage ToChatMessage(GenerationMessage message) => new(new ChatRole(message.Role), message.Content);

    private void PublishStatus(GenerationChange change)
    {
        if (change.StatusEvent is { } statusEvent)
        {
            _hub.Publish(statusEvent, persisted: true);
        }
    }

    private void Release(string id, RunHandle handle)
    {
        if (_runs.TryRemove(new KeyValuePair<string, RunHandle>(id, handle)))
        {
            lock (_runningPerBackend)
            {
                _runningPerBackend[handle.Backend.Name] = Math.Max(0, _runningPerBackend.GetValueOrDefault(handle.Backend.Name) - 1);
            }
        }

        handle.Dispose();
    }

    /// <summary>One run: its backend, its cancellation source, and the task that ends when its status is written.</summary>
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
}
