using System.Globalization;
using System.Runtime.CompilerServices;
using Holdfast.Sessions;
using Holdfast.Storage;
using Microsoft.Extensions.Options;

namespace Holdfast.Generation;

/// <summary>
/// Following a session's log: the stored part from any seq, then the live tail, with no gap and no duplicate; and
/// waiting until a seq is durable. Woken by the in-process <see cref="GenerationEventHub"/> (live chunks) and by
/// <see cref="IChangeSignals"/> (commits and status changes, from any node); an idle re-read covers writers in other
/// processes on a shared SQLite file.
/// </summary>
internal sealed class GenerationFollower(
    IGenerationStore store,
    IChangeSignals changeSignals,
    GenerationEventHub hub,
    IOptions<GenerationOptions> options,
    TimeProvider time)
{
    private readonly IGenerationStore _store = store;
    private readonly IChangeSignals _signals = changeSignals;
    private readonly GenerationEventHub _hub = hub;
    private readonly GenerationOptions _options = options.Value;
    private readonly TimeProvider _time = time;

    /// <summary>
    /// Waits until the log of <paramref name="id"/> holds <paramref name="seq"/> (its group commit is done) and returns
    /// the durable seq. Woken by the session's change signals, not by polling; a re-read every second covers a writer
    /// in another process.
    /// </summary>
    public async Task<long> WaitDurableAsync(string id, long seq, CancellationToken cancellationToken = default)
    {
        // The common case needs no store read and no subscription: this process's group commit already reported the
        // seq (every live follower asks this for every chunk, so a read here would be thousands of reads a second).
        var known = _hub.DurableSeq(id);
        if (known >= seq)
        {
            return known;
        }

        using var signals = _signals.Subscribe(id);
        var read = true;
        while (true)
        {
            known = _hub.DurableSeq(id);
            if (known >= seq)
            {
                return known;
            }

            if (read)
            {
                // A seq this process did not commit (a status change, another process's writer): ask the store.
                var durable = await _store.ReadDurableSeqAsync(id, cancellationToken);
                if (durable >= seq)
                {
                    return durable;
                }
            }

            using var timer = new CancellationTokenSource(TimeSpan.FromSeconds(1), _time);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
            try
            {
                await signals.WaitAsync(wait.Token);

                // Woken by a commit: re-read the store only when this process's watermark does not cover it.
                read = _hub.DurableSeq(id) < seq;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Re-read: a writer in another process does not signal this one.
                read = true;
            }
        }
    }

    /// <summary>
    /// Waits until event <paramref name="e"/> is durable and says whether it may be relayed as it is. An event read from
    /// the log, or a live chunk whose own run's group commit on this node stored it (<see cref="GenerationEventHub.IsConfirmed"/>),
    /// is relayed as it is. A live chunk whose seq became durable some other way (its run lost its lease, and a later
    /// run wrote that seq, maybe with other text, or a status event took it) is not: the caller sends what the log holds.
    /// Woken by the session's change signals; no store read while this node's commits confirm the chunks.
    /// </summary>
    public async Task<(long Durable, bool AsRelayed)> WaitRelayableAsync(GenerationLogEvent e, long knownDurable, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.RunEpoch is not { } epoch)
        {
            return (e.Seq <= knownDurable ? knownDurable : await WaitDurableAsync(e.SessionId, e.Seq, cancellationToken), true);
        }

        if (_hub.IsConfirmed(e.SessionId, epoch, e.Seq))
        {
            return (Math.Max(knownDurable, e.Seq), true);
        }

        using var signals = _signals.Subscribe(e.SessionId);
        var read = false;
        while (true)
        {
            if (_hub.IsConfirmed(e.SessionId, epoch, e.Seq))
            {
                return (Math.Max(knownDurable, e.Seq), true);
            }

            if (read || !_hub.RunsHere(e.SessionId))
            {
                var durable = await _store.ReadDurableSeqAsync(e.SessionId, cancellationToken);
                if (durable >= e.Seq)
                {
                    return (durable, _hub.IsConfirmed(e.SessionId, epoch, e.Seq));
                }
            }

            using var timer = new CancellationTokenSource(TimeSpan.FromSeconds(1), _time);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
            try
            {
                await signals.WaitAsync(wait.Token);
                read = !_hub.IsConfirmed(e.SessionId, epoch, e.Seq);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                read = true;
            }
        }
    }

    /// <summary>
    /// Refuses to follow from a seq inside a compacted log (<see cref="GenerationOptions.LogRetention"/>): its text up to
    /// the merged chunk is one event, so a reader that already has part of it would get that part again. Following
    /// from 0, or from the merged chunk's seq on, stays exact. Callers that start a response before following (SSE)
    /// call it first, so the refusal is a 400 problem rather than a broken stream.
    /// </summary>
    /// <exception cref="InvalidSessionInputException">The seq falls inside the compacted part.</exception>
    public async Task CheckFollowFromAsync(string id, long afterSeq, CancellationToken cancellationToken = default)
    {
        if (afterSeq > 0 && await _store.ReadCompactedChunkSeqAsync(id, cancellationToken) is { } merged && afterSeq < merged)
        {
            throw new InvalidSessionInputException(
                "after",
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"The event log of session '{id}' was compacted (Generation:LogRetention): its text up to seq {merged} is one event now, so it cannot be resumed after seq {afterSeq} without repeating text. Follow it from 0 (the whole text) or after seq {merged}, or read the session's output."));
        }
    }

    /// <summary>
    /// Every log event after <paramref name="afterSeq"/>: the stored part, then the live tail as it is produced, in
    /// order with no gap and no duplicate. The sequence ends after the session's terminal status event (completed,
    /// cancelled or failed) or when <paramref name="cancellationToken"/> is cancelled; detaching never stops the run.
    /// Works for any number of followers, and across processes (a session run by another process is followed from
    /// the store). The first <c>MoveNextAsync</c> throws <see cref="SessionNotFoundException"/> for a missing session.
    /// <para>
    /// Live (<paramref name="committedOnly"/> false): chunks are relayed the moment the backend produces them, before
    /// their group commit (from the in-process <see cref="GenerationEventHub"/>); if the process then crashes, the last
    /// flush interval is regenerated after the restart under new sequence numbers. Committed only: every event is read
    /// back from the store once committed, woken by the <see cref="ChangeKind.Log"/>/<see cref="ChangeKind.Status"/>
    /// signals, so a reader's <c>afterSeq</c> stays valid across crashes.
    /// </para>
    /// </summary>
    public async IAsyncEnumerable<GenerationLogEvent> FollowAsync(
        string id,
        string? ownerScope,
        long afterSeq,
        bool committedOnly,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        _ = await _store.FindAsync(id, ownerScope, cancellationToken) ?? throw new SessionNotFoundException(SessionKind.Generation, id);
        await CheckFollowFromAsync(id, afterSeq, cancellationToken);
        using var signals = _signals.Subscribe(id);
        using var subscription = _hub.Subscribe(id);
        var last = Math.Max(0, afterSeq);
        var held = new SortedDictionary<long, GenerationLogEvent>();

        // Stored part, then the events not yet committed when we subscribed.
        GenerationLogEvent? lastEvent = null;
        while (true)
        {
            var page = await _store.ReadLogAfterAsync(id, last, 1000, cancellationToken);
            foreach (var e in page)
            {
                last = e.Seq;
                lastEvent = e;
                yield return e;
            }

            if (page.Count < 1000)
            {
                break;
            }
        }

        if (committedOnly)
        {
            subscription.Dispose();
            await foreach (var e in CommittedTailAsync(id, signals, last, lastEvent, cancellationToken))
            {
                yield return e;
            }

            yield break;
        }

        foreach (var e in subscription.Pending.Where(e => e.Seq > last).OrderBy(e => e.Seq))
        {
            held[e.Seq] = e;
        }

        while (held.Remove(last + 1, out var next))
        {
            last = next.Seq;
            lastEvent = next;
            yield return next;
        }

        if (lastEvent?.IsTerminal == true)
        {
            yield break;
        }

        // Live tail; any gap (events published out of order, or produced by another process) is filled from the store.
        // A session run here arrives through the hub; one run by another node is read back when its commits and
        // status changes are signalled (LISTEN/NOTIFY on PostgreSQL); the idle re-read covers a writer in another
        // process on a shared SQLite file.
        //
        // The waits for the next live event, the next change signal and the idle timer stay pending across wake-ups
        // (one that did not fire is waited for again, not cancelled): cancelling the losing wait on every wake-up cost
        // a thrown OperationCanceledException each time, hundreds a second with many followers.
        var poll = TimeSpan.FromMilliseconds(Math.Clamp(_options.PollInterval.TotalMilliseconds / 2, 50, 500));
        Task<bool>? liveWait = null;
        Task? signalWait = null;
        Task? idle = null;
        var liveOpen = true;
        var lastWake = _time.GetTimestamp();
        while (true)
        {
            if (liveOpen)
            {
                liveWait ??= subscription.Reader.WaitToReadAsync(cancellationToken).AsTask();
            }

            signalWait ??= signals.WaitAsync(cancellationToken);
            idle ??= Task.Delay(Max(TimeSpan.Zero, poll - _time.GetElapsedTime(lastWake)), _time, cancellationToken);
            await Task.WhenAny(liveWait ?? signalWait, signalWait, idle);
            cancellationToken.ThrowIfCancellationRequested();

            var gotLive = false;
            if (liveWait is { IsCompleted: true })
            {
                liveOpen = liveWait.IsCompletedSuccessfully && liveWait.Result;
                gotLive = liveOpen;
                liveWait = null;
            }

            var signalled = false;
            if (signalWait.IsCompleted)
            {
                signalled = signalWait.IsCompletedSuccessfully;
                signalWait = null;
            }

            var idleFired = false;
            if (idle.IsCompleted)
            {
                idleFired = true;
                idle = null;
            }

            // The idle timer runs from the last wake-up: it is a time-out only when nothing came for a whole poll.
            var timedOut = false;
            if (gotLive || signalled)
            {
                lastWake = _time.GetTimestamp();
            }
            else if (idleFired && _time.GetElapsedTime(lastWake) >= poll)
            {
                timedOut = true;
                lastWake = _time.GetTimestamp();
            }

            // A session run here needs no store read per commit: its events come through the hub.
            signalled &= !_hub.RunsHere(id);

            while (subscription.Reader.TryRead(out var live))
            {
                if (live.Seq > last)
                {
                    held[live.Seq] = live;
                }
            }

            var fill = timedOut || signalled || (held.Count > 0 && !held.ContainsKey(last + 1));
            if (fill)
            {
                foreach (var e in await _store.ReadLogAfterAsync(id, last, 1000, cancellationToken))
                {
                    held.TryAdd(e.Seq, e);
                }
            }

            while (held.Remove(last + 1, out var next))
            {
                last = next.Seq;
                yield return next;
                if (next.IsTerminal && !held.ContainsKey(last + 1))
                {
                    yield break;
                }
            }

            if (timedOut && await _store.FindAsync(id, null, cancellationToken) is null)
            {
                yield break;
            }
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>
    /// The committed-only live tail: woken by the session's change signals (a group commit or a status change),
    /// everything yielded is read back from the store; an idle re-read covers writers in other processes.
    /// </summary>
    private async IAsyncEnumerable<GenerationLogEvent> CommittedTailAsync(
        string id,
        IChangeSubscription signals,
        long last,
        GenerationLogEvent? lastEvent,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (lastEvent?.IsTerminal == true)
        {
            yield break;
        }

        var idle = TimeSpan.FromMilliseconds(Math.Clamp(_options.PollInterval.TotalMilliseconds / 2, 50, 500));
        bool signalled;
        while (true)
        {
            using (var timer = new CancellationTokenSource(idle, _time))
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token))
            {
                try
                {
                    await signals.WaitAsync(wait.Token);
                    signalled = true;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    signalled = false;
                }
            }

            var page = await _store.ReadLogAfterAsync(id, last, 1000, cancellationToken);
            for (var i = 0; i < page.Count; i++)
            {
                last = page[i].Seq;
                yield return page[i];
                if (page[i].IsTerminal && i == page.Count - 1 && page.Count < 1000)
                {
                    yield break;
                }
            }

            signalled |= page.Count > 0;
            if (page.Count == 0 && !signalled && await _store.FindAsync(id, null, cancellationToken) is null)
            {
                yield break;
            }
        }
    }
}
