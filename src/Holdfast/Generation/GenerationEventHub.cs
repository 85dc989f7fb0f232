using System.Collections.Concurrent;
using System.Threading.Channels;
using Holdfast.Sessions;

namespace Holdfast.Generation;

/// <summary>
/// In-process fan-out of log events to live followers. Chunks are published the moment the backend produces them,
/// before their group commit; the hub keeps them until the commit is done, so a follower that subscribes in
/// between gets them from the hub (<see cref="Subscription.Pending"/>) rather than missing them. It also remembers
/// which run's commits this node confirmed (<see cref="IsConfirmed"/>): a live chunk is known durable as it is only
/// when its own run's commit stored it; a run that lost its lease never confirms, and its seqs are then written by
/// another run with other text, which a relay must read from the log.
/// </summary>
internal sealed class GenerationEventHub(SessionChanges changes)
{
    private readonly ConcurrentDictionary<string, Topic> _topics = new(StringComparer.Ordinal);

    /// <summary>Publishes an event to the session's followers; <paramref name="persisted"/> false keeps it until <see cref="MarkPersisted"/>.</summary>
    public void Publish(GenerationLogEvent logEvent, bool persisted)
    {
        if (changes.HasObservers)
        {
            changes.Notify(new SessionChange(SessionKind.Generation, logEvent.SessionId, logEvent.Type == GenerationLogEventType.Chunk));
        }

        var topic = persisted ? _topics.GetValueOrDefault(logEvent.SessionId) : _topics.GetOrAdd(logEvent.SessionId, _ => new Topic());
        if (topic is null)
        {
            return;
        }

        lock (topic)
        {
            if (!persisted)
            {
                topic.Pending.Add(logEvent);
                topic.RunsHere = true;
            }
            else if (logEvent.Seq > topic.Durable)
            {
                topic.Durable = logEvent.Seq;
            }

            foreach (var subscriber in topic.Subscribers)
            {
                subscriber.Writer.TryWrite(logEvent);
            }
        }
    }

    /// <summary>Signals a change of the session that has no log event (a control that only set the desired state, a delete).</summary>
    public void NotifyChanged(string sessionId) => changes.Notify(new SessionChange(SessionKind.Generation, sessionId));

    /// <summary>
    /// Forgets pending events up to <paramref name="seq"/> (they are now readable from the store) and records that the
    /// run holding <paramref name="runEpoch"/> stored its chunks up to <paramref name="seq"/>.
    /// </summary>
    public void MarkPersisted(string sessionId, long seq, long runEpoch)
    {
        if (!_topics.TryGetValue(sessionId, out var topic))
        {
            return;
        }

        lock (topic)
        {
            topic.Pending.RemoveAll(e => e.Seq <= seq);
            if (seq > topic.Durable)
            {
                topic.Durable = seq;
            }

            if (runEpoch != topic.ConfirmedEpoch || seq > topic.ConfirmedSeq)
            {
                topic.ConfirmedEpoch = runEpoch;
                topic.ConfirmedSeq = seq;
            }

            RemoveIfIdle(sessionId, topic);
        }
    }

    /// <summary>
    /// The highest seq of <paramref name="sessionId"/> this process knows is committed (its group commit here reported
    /// it, or it was published as persisted), or 0 when it knows none: no store read is needed to tell a follower that
    /// a chunk it got from this hub is durable. Known only while the session has followers or pending events.
    /// </summary>
    public long DurableSeq(string sessionId)
    {
        if (!_topics.TryGetValue(sessionId, out var topic))
        {
            return 0;
        }

        lock (topic)
        {
            return topic.Durable;
        }
    }

    /// <summary>
    /// True when this node's group commit stored the session's chunks up to <paramref name="seq"/> for the run holding
    /// <paramref name="runEpoch"/>: a live chunk of that run at that seq is durable exactly as it was relayed.
    /// </summary>
    public bool IsConfirmed(string sessionId, long runEpoch, long seq)
    {
        if (!_topics.TryGetValue(sessionId, out var topic))
        {
            return false;
        }

        lock (topic)
        {
            return topic.ConfirmedEpoch == runEpoch && topic.ConfirmedSeq >= seq;
        }
    }

    /// <summary>
    /// True while a run of the session on this node publishes live chunks here (followers then need no store read per
    /// commit); false for a session run by another node, whose commits a follower learns from the change signals.
    /// </summary>
    public bool RunsHere(string sessionId)
    {
        if (!_topics.TryGetValue(sessionId, out var topic))
        {
            return false;
        }

        lock (topic)
        {
            return topic.RunsHere;
        }
    }

    /// <summary>Drops every pending event of a session (its run ended or lost its lease; nothing more will be committed for it).</summary>
    public void ClearPending(string sessionId)
    {
        if (_topics.TryGetValue(sessionId, out var topic))
        {
            lock (topic)
            {
                topic.Pending.Clear();
                topic.RunsHere = false;
                RemoveIfIdle(sessionId, topic);
            }
        }
    }

    /// <summary>Subscribes to a session; the snapshot of pending events and the subscription are taken atomically.</summary>
    public Subscription Subscribe(string sessionId)
    {
        while (true)
        {
            var topic = _topics.GetOrAdd(sessionId, _ => new Topic());
            lock (topic)
            {
                if (topic.Removed)
                {
                    continue;
                }

                var channel = Channel.CreateUnbounded<GenerationLogEvent>(new UnboundedChannelOptions { SingleReader = true });
                topic.Subscribers.Add(channel);
                return new Subscription(this, sessionId, topic, channel, [.. topic.Pending]);
            }
        }
    }

    /// <summary>Number of sessions with followers or pending events (for tests and metrics).</summary>
    public int TopicCount => _topics.Count;

    private void Unsubscribe(string sessionId, Topic topic, Channel<GenerationLogEvent> channel)
    {
        lock (topic)
        {
            topic.Subscribers.Remove(channel);
            channel.Writer.TryComplete();
            RemoveIfIdle(sessionId, topic);
        }
    }

    private void RemoveIfIdle(string sessionId, Topic topic)
    {
        if (topic.Subscribers.Count == 0 && topic.Pending.Count == 0 && !topic.Removed)
        {
            topic.Removed = true;
            _topics.TryRemove(new KeyValuePair<string, Topic>(sessionId, topic));
        }
    }

    internal sealed class Topic
    {
        public List<GenerationLogEvent> Pending { get; } = [];

        public List<Channel<GenerationLogEvent>> Subscribers { get; } = [];

        public bool Removed { get; set; }

        /// <summary>Highest seq known committed (see <see cref="DurableSeq"/>).</summary>
        public long Durable { get; set; }

        /// <summary>The run (fencing token) whose chunks this node's last group commit of the session stored.</summary>
        public long ConfirmedEpoch { get; set; } = -1;

        /// <summary>The highest seq of <see cref="ConfirmedEpoch"/>'s chunks stored.</summary>
        public long ConfirmedSeq { get; set; }

        /// <summary>A run on this node publishes live chunks of the session (see <see cref="GenerationEventHub.RunsHere"/>).</summary>
        public bool RunsHere { get; set; }
    }

    /// <summary>A live follower's subscription: pending events at subscribe time, then everything published after.</summary>
    internal sealed class Subscription : IDisposable
    {
        private readonly GenerationEventHub _hub;
        private readonly string _sessionId;
        private readonly Topic _topic;
        private readonly Channel<GenerationLogEvent> _channel;

        public Subscription(GenerationEventHub hub, string sessionId, Topic topic, Channel<GenerationLogEvent> channel, IReadOnlyList<GenerationLogEvent> pending)
        {
            _hub = hub;
            _sessionId = sessionId;
            _topic = topic;
            _channel = channel;
            Pending = pending;
        }

        public IReadOnlyList<GenerationLogEvent> Pending { get; }

        public ChannelReader<GenerationLogEvent> Reader => _channel.Reader;

        public void Dispose() => _hub.Unsubscribe(_sessionId, _topic, _channel);
    }
}
