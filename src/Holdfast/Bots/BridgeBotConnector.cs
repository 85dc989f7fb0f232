using System.Collections.Concurrent;

namespace Holdfast.Bots;

/// <summary>
/// The <c>bridge</c> bot type: the bot runs elsewhere (e.g. a Node WhatsApp library) and reports its QR codes,
/// received messages, connection state and login state through Holdfast's HTTP API, which calls
/// <see cref="BotManager"/>. The connector itself is passive: it only tracks which sessions it holds.
/// </summary>
public sealed class BridgeBotConnector : IBotConnector
{
    /// <summary>The bot type name.</summary>
    public const string TypeName = "bridge";

    private readonly ConcurrentDictionary<string, byte> _sessions = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public string BotType => TypeName;

    /// <summary>Sessions this connector holds.</summary>
    public IReadOnlyCollection<string> ConnectedSessions => _sessions.Keys.ToList();

    /// <inheritdoc />
    public Task ConnectAsync(BotSession session, IBotSessionCallbacks callbacks, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        _sessions[session.SessionId] = 0;
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task DisconnectAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        _sessions.TryRemove(sessionId, out _);
        return Task.CompletedTask;
    }
}
