using System.Collections.Concurrent;
using System.Threading.Channels;
using Holdfast.Bots;
using Holdfast.Generation;
using Holdfast.Sessions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Holdfast.Server.Dashboard;

/// <summary>
/// The live part of the dashboard's sessions list. It observes <see cref="SessionChanges"/> (every change of a
/// generation or bot made in this process), collects the ids that changed, and every <see cref="Tick"/> reads each of
/// them back once through <see cref="GenerationSessions"/> or <see cref="BotManager"/> and hands the rows to every
/// open feed that may see them (owner, kind, id). A session whose output only grew is read at most once per
/// <see cref="OutputRefresh"/>, so a thousand streaming generations cost a thousand reads a second at most, and
/// nothing while no dashboard is open. A change of a session's webhook deliveries only (an attempt recorded) reads
/// nothing: the feeds of that one session (its view) are told, and the view reads its delivery log again.
/// </summary>
internal sealed class DashboardSessionFeed(
    SessionChanges changes,
    GenerationSessions generations,
    GenerationRunner runner,
    BotManager bots,
    TimeProvider time,
    ILogger<DashboardSessionFeed> logger)
{
    /// <summary>How often changed sessions are read back and sent.</summary>
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

    /// <summary>Least time between two refreshes of a session whose output only grew (its token count).</summary>
    public static readonly TimeSpan OutputRefresh = TimeSpan.FromMilliseconds(500);

    /// <summary>Batches a feed may have waiting before it is closed (the browser reconnects and gets a fresh snapshot).</summary>
    private const int MaxQueuedBatches = 1000;

    // Value: true when something other than output changed since the id was last read.
    private readonly ConcurrentDictionary<(SessionKind Kind, string Id), bool> _dirty = new();
    private readonly ConcurrentDictionary<(SessionKind Kind, string Id), byte> _deliveriesChanged = new();
    private readonly Dictionary<string, long> _outputReadAt = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly List<Subscriber> _subscribers = [];
    private int _subscriberCount;
    private long _failureLoggedAt;

    /// <summary>
    /// Opens a feed of rows that <paramref name="ownerScope"/> may see (null: every owner), optionally only of one
    /// kind or one session. Subscribe before reading the snapshot: every change from then on is delivered.
    /// </summary>
    public Subscriber Subscribe(string? ownerScope, SessionKind? kind, string? id)
    {
        var subscriber = new Subscriber(this, ownerScope, kind, id);
        lock (_gate)
        {
            _subscribers.Add(subscriber);
            _subscriberCount = _subscribers.Count;
        }

        return subscriber;
    }

    /// <summary>Observes changes and sends them every <see cref="Tick"/> until <paramref name="stoppingToken"/> is cancelled (<see cref="DashboardSessionFeedService"/>).</summary>
    internal async Task RunAsync(CancellationToken stoppingToken)
    {
        using var observation = changes.Subscribe(OnChange);
        using var timer = new PeriodicTimer(Tick, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await FlushAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.DashboardFeedFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Server stopping: open feeds end with their requests.
        }
    }

    private void OnChange(SessionChange change)
    {
        if (Volatile.Read(ref _subscriberCount) == 0)
        {
            return;
        }

        if (change.WebhookDeliveriesOnly)
        {
            _deliveriesChanged.TryAdd((change.Kind, change.SessionId), 0);
            return;
        }

        var full = !change.OutputOnly;
        _dirty.AddOrUpdate((change.Kind, change.SessionId), full, (_, old) => old || full);
    }

    /// <summary>Reads back what changed and sends it; completes when every open feed has its rows queued.</summary>
    internal async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _subscriberCount) == 0)
        {
            _dirty.Clear();
            _deliveriesChanged.Clear();
            _outputReadAt.Clear();
            return;
        }

        var deliveries = new List<DashboardSessionRef>();
        foreach (var key in _deliveriesChanged.Keys)
        {
            if (_deliveriesChanged.TryRemove(key, out _))
            {
                deliveries.Add(new DashboardSessionRef(key.Kind.ToWire(), key.Id));
            }
        }

        var now = time.GetTimestamp();
        var due = new List<(SessionKind Kind, string Id)>();
        foreach (var (key, full) in _dirty)
        {
            if (!full && _outputReadAt.TryGetValue(key.Id, out var readAt) && time.GetElapsedTime(readAt, now) < OutputRefresh)
            {
                continue;
            }

            // Removed before the read, so a change that lands while we read is read again on the next tick.
            if (_dirty.TryRemove(key, out _))
            {
                due.Add(key);
            }
        }

        if (due.Count == 0 && deliveries.Count == 0)
        {
            return;
        }

        var rows = new List<DashboardSession>(due.Count);
        var removed = new List<DashboardSessionRef>();
        Exception? failure = null;
        foreach (var (kind, id) in due)
        {
            try
            {
                if (kind == SessionKind.Generation)
                {
                    _outputReadAt[id] = now;
                    try
                    {
                        rows.Add(await RowAsync(await generations.GetAsync(id, ownerScope: null, cancellationToken), cancellationToken));
                    }
                    catch (SessionNotFoundException)
                    {
                        removed.Add(new DashboardSessionRef(kind.ToWire(), id));
                        _outputReadAt.Remove(id);
                    }
                }
                else if (await bots.FindAsync(id, cancellationToken) is { } bot)
                {
                    rows.Add(DashboardSession.From(bot));
                }
                else
                {
                    removed.Add(new DashboardSessionRef(kind.ToWire(), id));
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The store did not answer for this one (busy, failing): read it again on the next tick.
                _dirty.AddOrUpdate((kind, id), true, (_, _) => true);
                failure ??= ex;
            }
        }

        if (_outputReadAt.Count > 10_000)
        {
            foreach (var stale in _outputReadAt.Where(e => time.GetElapsedTime(e.Value, now) > OutputRefresh * 4).Select(e => e.Key).ToList())
            {
                _outputReadAt.Remove(stale);
            }
        }

        Subscriber[] subscribers;
        lock (_gate)
        {
            subscribers = [.. _subscribers];
        }

        foreach (var subscriber in subscribers)
        {
            subscriber.Deliver(new DashboardFeedBatch(rows, removed, deliveries));
        }

        if (failure is not null && (_failureLoggedAt == 0 || time.GetElapsedTime(_failureLoggedAt) > TimeSpan.FromSeconds(30)))
        {
            // Once per half minute while the store keeps failing, not every tick.
            _failureLoggedAt = time.GetTimestamp();
            Log.DashboardFeedFailed(logger, failure);
        }
    }

    /// <summary>The row of a generation, with the node that holds it while it runs.</summary>
    internal async Task<DashboardSession> RowAsync(GenerationSession session, CancellationToken cancellationToken)
    {
        var row = DashboardSession.From(session);
        return session.Status == GenerationStatus.Running && await runner.FindHolderAsync(session.Id, cancellationToken) is { } holder
            ? row with { Holder = holder.NodeId }
            : row;
    }

    /// <summary>Nodes that share the store now (heartbeat within a lease, not stopped): one on SQLite.</summary>
    internal async Task<int> LiveNodesAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var nodes = await runner.ListNodesAsync(cancellationToken);
        return Math.Max(1, nodes.Count(n => n.StoppedAt is null && now - n.HeartbeatAt < runner.Cluster.LeaseDuration));
    }

    private void Remove(Subscriber subscriber)
    {
        lock (_gate)
        {
            _subscribers.Remove(subscriber);
            _subscriberCount = _subscribers.Count;
        }
    }

    /// <summary>One open feed (one browser window's list or session view).</summary>
    internal sealed class Subscriber : IDisposable
    {
        private readonly DashboardSessionFeed _feed;
        private readonly Channel<DashboardFeedBatch> _channel =
            Channel.CreateBounded<DashboardFeedBatch>(
                new BoundedChannelOptions(MaxQueuedBatches) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });

        public Subscriber(DashboardSessionFeed feed, string? ownerScope, SessionKind? kind, string? id)
        {
            _feed = feed;
            OwnerScope = ownerScope;
            Kind = kind;
            Id = id;
        }

        public string? OwnerScope { get; }

        public SessionKind? Kind { get; }

        public string? Id { get; }

        private readonly HashSet<(string Kind, string Id)> _known = [];

        /// <summary>Batches of changed rows, removed sessions and changed delivery logs; completes when the feed fell too far behind.</summary>
        public ChannelReader<DashboardFeedBatch> Reader => _channel.Reader;

        /// <summary>True when <paramref name="row"/> is one this feed may show.</summary>
        public bool Accepts(DashboardSession row) =>
            (OwnerScope is null || string.Equals(row.Owner, OwnerScope, StringComparison.Ordinal)) && Matches(row.Kind, row.Id);

        /// <summary>Records that the browser has these rows (from the snapshot), so their removal reaches it.</summary>
        public void Remember(IEnumerable<DashboardSession> rows)
        {
            lock (_known)
            {
                foreach (var row in rows)
                {
                    _known.Add((row.Kind, row.Id));
                }
            }
        }

        public void Dispose()
        {
            _feed.Remove(this);
            _channel.Writer.TryComplete();
        }

        internal void Deliver(DashboardFeedBatch batch)
        {
            var mine = batch.Rows.Where(Accepts).ToList();
            Remember(mine);

            // A removed session's owner cannot be read any more: only a feed that was sent the row hears of its removal.
            List<DashboardSessionRef> gone;
            lock (_known)
            {
                gone = batch.Removed.Where(r => _known.Remove((r.Kind, r.Id))).ToList();
            }

            // Delivery logs only to the views of one session: the stream checked the caller may see it when it opened.
            var deliveries = Id is null ? [] : batch.WebhookDeliveries.Where(r => Matches(r.Kind, r.Id)).ToList();
            if ((mine.Count > 0 || gone.Count > 0 || deliveries.Count > 0) && !_channel.Writer.TryWrite(new DashboardFeedBatch(mine, gone, deliveries)))
            {
                _channel.Writer.TryComplete();
            }
        }

        private bool Matches(string kind, string id) =>
            (Kind is null || string.Equals(Kind.Value.ToWire(), kind, StringComparison.Ordinal))
            && (Id is null || string.Equals(Id, id, StringComparison.Ordinal));
    }
}

/// <summary>What one feed is sent at once: changed rows, removed sessions, sessions whose webhook deliveries changed.</summary>
internal sealed record DashboardFeedBatch(
    IReadOnlyList<DashboardSession> Rows,
    IReadOnlyList<DashboardSessionRef> Removed,
    IReadOnlyList<DashboardSessionRef> WebhookDeliveries);

/// <summary>Runs the <see cref="DashboardSessionFeed"/> for the life of the server.</summary>
internal sealed class DashboardSessionFeedService(DashboardSessionFeed feed) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => feed.RunAsync(stoppingToken);
}
