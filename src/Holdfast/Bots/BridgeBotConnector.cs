using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Holdfast.Bots;

/// <summary>
/// The <c>bridge</c> bot type: the bot runs elsewhere (e.g. a Node WhatsApp library) and reports its QR codes,
/// received messages, connection state and login state through Holdfast's HTTP API, which calls
/// <see cref="BotManager"/>. The connector tracks which sessions it holds and tells listening runtimes what the
/// server decided (<see cref="Listen"/>: <c>start</c> when the session is started or restored, <c>end</c> when it
/// is ended), which <c>GET /api/v1/bots/{id}/commands</c> relays as Server-Sent Events.
/// </summary>
public sealed class BridgeBotConnector : IBotConnector
{
    /// <summary>The bot type name.</summary>
    public const string TypeName = "bridge";

    /// <summary>Command sent when the session was started, reactivated or restored: the runtime should connect.</summary>
    public const string StartCommand = "start";

    /// <summary>Command sent when the session was ended: the runtime should disconnect.</summary>
    public const string EndCommand = "end";

    private readonly ConcurrentDictionary<string, byte> _sessions = new(StringComparer.Ordinal);
    private readonly Storage.IChangeSignals? _signals;
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<Channel<string>, byte>> _listeners = new(StringComparer.Ordinal);

    /// <summary>A connector whose commands reach listeners in this process only.</summary>
    public BridgeBotConnector()
    {
    }

    /// <summary>
    /// A connector that also publishes each command as a change signal (<see cref="BotSignals.Commands"/>), so a
    /// command stream on any node hears it (<c>LISTEN/NOTIFY</c> on PostgreSQL).
    /// </summary>
    public BridgeBotConnector(Storage.IChangeSignals signals) => _signals = signals;

    /// <inheritdoc />
    public string BotType => TypeName;

    /// <summary>Sessions this connector holds.</summary>
    public IReadOnlyCollection<string> ConnectedSessions => _sessions.Keys.ToList();

    /// <inheritdoc />
    public Task ConnectAsync(BotSession session, IBotSessionCallbacks callbacks, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        _sessions[session.SessionId] = 0;
        Publish(session.SessionId, StartCommand);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task DisconnectAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        _sessions.TryRemove(sessionId, out _);
        Publish(sessionId, EndCommand);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Lets go of the session here without an <c>end</c>: another node runs it now and has sent its runtime <c>start</c>.
    /// </summary>
    public Task ReleaseAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        _sessions.TryRemove(sessionId, out _);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Listens for the commands of <paramref name="sessionId"/> in this process until the returned listener is
    /// disposed. Commands are hints to re-read the session: a listener that falls behind keeps only the newest ones.
    /// </summary>
    public BotCommandListener Listen(string sessionId)
    {
        var channel = Channel.CreateBounded<string>(new BoundedChannelOptions(16) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        var set = _listeners.GetOrAdd(sessionId, _ => new ConcurrentDictionary<Channel<string>, byte>());
        set[channel] = 0;
        return new BotCommandListener(channel.Reader, () =>
        {
            set.TryRemove(channel, out _);
            channel.Writer.TryComplete();
        });
    }

    private void Publish(string sessionId, string command)
    {
        BotSignals.Publish(_signals, BotSignals.Commands(sessionId));
        if (_listeners.TryGetValue(sessionId, out var set))
        {
            foreach (var channel in set.Keys)
            {
                channel.Writer.TryWrite(command);
            }
        }
    }
}

/// <summary>Commands for one session, as <see cref="BridgeBotConnector.Listen"/> receives them; dispose to stop.</summary>
public sealed class BotCommandListener(ChannelReader<string> commands, Action stop) : IDisposable
{
    /// <summary>The commands, in the order they were published.</summary>
    public ChannelReader<string> Commands { get; } = commands;

    /// <inheritdoc />
    public void Dispose() => stop();
}
