namespace Holdfast.Bots;

/// <summary>
/// The connection state a bot runtime (or a built-in connector) reports, beside the design record's <c>status</c>:
/// <c>status</c> is <c>inactive</c> exactly when the session was ended; the connection state says how the runtime is
/// doing. Only connection reports (<c>setConnection</c>, connectors) change it; messages do not.
/// </summary>
public enum BotConnectionState
{
    Starting,
    AwaitingQr,
    Connected,
    Reconnecting,
    Disconnected,
    LoggedOut,
    Failed,
}

/// <summary>What the runtime last reported: state, reason, disconnect code (e.g. Baileys' <c>DisconnectReason</c>) and when.</summary>
public sealed record BotConnection(BotConnectionState State, string? Reason, int? Code, DateTimeOffset At);

/// <summary>Wire names of <see cref="BotConnectionState"/> and its one state machine.</summary>
public static class BotConnectionStates
{
    /// <summary>Every state, in wire names: <c>starting, awaiting_qr, connected, reconnecting, disconnected, logged_out, failed</c>.</summary>
    public static IReadOnlyList<string> WireNames { get; } =
        Enum.GetValues<BotConnectionState>().Select(ToWire).ToList();

    public static string ToWire(this BotConnectionState state) => state switch
    {
        BotConnectionState.Starting => "starting",
        BotConnectionState.AwaitingQr => "awaiting_qr",
        BotConnectionState.Connected => "connected",
        BotConnectionState.Reconnecting => "reconnecting",
        BotConnectionState.Disconnected => "disconnected",
        BotConnectionState.LoggedOut => "logged_out",
        BotConnectionState.Failed => "failed",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "Unknown connection state."),
    };

    public static bool TryParse(string? value, out BotConnectionState state)
    {
        foreach (var candidate in Enum.GetValues<BotConnectionState>())
        {
            if (string.Equals(candidate.ToWire(), value, StringComparison.Ordinal))
            {
                state = candidate;
                return true;
            }
        }

        state = default;
        return false;
    }

    public static BotConnectionState Parse(string value) =>
        TryParse(value, out var state) ? state : throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown connection state.");

    /// <summary>
    /// The state machine, as one pure function: null when a session in <paramref name="from"/> (null: none reported
    /// yet) may move to <paramref name="to"/>, else a sentence saying why not. Repeating a state is allowed (its reason
    /// and code are updated). Refused: a QR while <c>connected</c> (the connection must drop first); <c>connected</c>,
    /// <c>reconnecting</c> or <c>disconnected</c> after <c>logged_out</c> (the login is gone: a new QR must be scanned);
    /// anything but a new <c>starting</c> after <c>failed</c>.
    /// </summary>
    public static string? CheckTransition(BotConnectionState? from, BotConnectionState to)
    {
        if (from is not { } current || current == to)
        {
            return null;
        }

        var allowed = current switch
        {
            BotConnectionState.Connected => to != BotConnectionState.AwaitingQr,
            BotConnectionState.LoggedOut => to is BotConnectionState.Starting or BotConnectionState.AwaitingQr or BotConnectionState.Failed,
            BotConnectionState.Failed => to == BotConnectionState.Starting,
            _ => true,
        };
        if (allowed)
        {
            return null;
        }

        var why = current switch
        {
            BotConnectionState.Connected => "a connected session shows no QR code; report 'reconnecting' or 'disconnected' first",
            BotConnectionState.LoggedOut => "its login is gone; report 'starting' or 'awaiting_qr' and pair it again",
            _ => "a failed session only moves on with a new 'starting'",
        };
        return $"A bot session cannot move from '{current.ToWire()}' to '{to.ToWire()}': {why}.";
    }

    /// <summary>True when restore on start reconnects a session in this state (not <c>failed</c>, not <c>logged_out</c>).</summary>
    public static bool IsRestorable(BotConnectionState? state) => state is not (BotConnectionState.Failed or BotConnectionState.LoggedOut);
}
