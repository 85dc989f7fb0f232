using Holdfast.Storage;

namespace Holdfast.Bots;

/// <summary>
/// The change-signal topics of bot sessions (<see cref="IChangeSignals"/>, <see cref="ChangeKind.Status"/>): one per
/// session that every committed change publishes (<see cref="Session"/>: QR long polls wait on it), and one per session
/// that a connector's connect and disconnect publish (<see cref="Commands"/>: the bridge's command stream waits on it).
/// In-process on SQLite, <c>LISTEN/NOTIFY</c> on PostgreSQL, so a runtime attached to one node hears what another did.
/// Signals are hints: a listener re-reads the session.
/// </summary>
public static class BotSignals
{
    /// <summary>The topic every change of <paramref name="sessionId"/> publishes to.</summary>
    public static string Session(string sessionId) => "bot:" + sessionId;

    /// <summary>The topic a connect (start, restore) or disconnect (end) of <paramref name="sessionId"/> publishes to.</summary>
    public static string Commands(string sessionId) => "bot-commands:" + sessionId;

    /// <summary>The topic a node's graceful stop publishes when it released its bot leases: the others take them over now.</summary>
    public const string Leases = "bot-leases";

    /// <summary>Publishes <paramref name="topic"/> (never blocks; a signal that cannot be sent is dropped: listeners re-read on reconnect).</summary>
    internal static void Publish(IChangeSignals? signals, string topic)
    {
        if (signals is null)
        {
            return;
        }

        var pending = signals.PublishAsync(new ChangeSignal(ChangeKind.Status, topic));
        if (!pending.IsCompletedSuccessfully)
        {
            _ = pending.AsTask().ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
    }
}
