using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Holdfast.Sessions;
using Microsoft.Extensions.Options;

namespace Holdfast.Bots;

/// <summary>
/// The built-in <c>web</c> bot type. On connect it stores a QR code that encodes a pairing link
/// <c>{PublicBaseUrl}/pair/{session_id}?token=…</c> to Holdfast's chat page; opening the link pairs that browser as the
/// bot's device (<see cref="BotManager.PairWebDeviceAsync"/>), and what the browser sends are the bot's received
/// messages. The pairing (a hash of the device key) is the session's login state, so after a restart a paired
/// session reconnects without a new scan. An unpaired one gets a new QR code on every connect (one stored before a
/// restart counts as expired) and a fresh one after each half of <see cref="BotOptions.QrLifetime"/> until it pairs.
/// </summary>
public sealed class WebBotConnector : IBotConnector, IDisposable
{
    /// <summary>The bot type name.</summary>
    public const string TypeName = "web";

    /// <summary>Connection detail of a paired session.</summary>
    public const string PairedDetail = "paired browser";

    private const string DeviceStatePrefix = "web-device:v1:";
    private static readonly Actor ConnectorActor = Actor.System("connector:web");

    private readonly BotOptions _options;
    private readonly ConcurrentDictionary<string, byte> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _renewals = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    public WebBotConnector(IOptions<BotOptions> options, TimeProvider? time = null)
    {
        _options = options.Value;
        _time = time ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public string BotType => TypeName;

    /// <summary>Sessions this connector holds.</summary>
    public IReadOnlyCollection<string> ConnectedSessions => _sessions.Keys.ToList();

    /// <inheritdoc />
    public bool ReportsOnConnect => true;

    /// <inheritdoc />
    public async Task ConnectAsync(BotSession session, IBotSessionCallbacks callbacks, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(callbacks);
        var id = session.SessionId;
        var state = await callbacks.LoadAuthStateAsync(id, cancellationToken);
        if (state is not null && IsDeviceAuthState(state))
        {
            await callbacks.ReportConnectionAsync(id, "connected", PairedDetail, ConnectorActor, cancellationToken);
        }
        else
        {
            var link = CreatePairingLink(_options.PublicBaseUrl, id, NewToken());
            await callbacks.UpdateQrAsync(id, link, ConnectorActor, cancellationToken);
            await callbacks.ReportConnectionAsync(id, "awaiting_qr", null, ConnectorActor, cancellationToken);
            StartRenewal(id, callbacks);
        }

        _sessions[id] = 0;
    }

    /// <inheritdoc />
    public Task DisconnectAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        _sessions.TryRemove(sessionId, out _);
        StopRenewal(sessionId);
        return Task.CompletedTask;
    }

    /// <summary>Stops every QR renewal.</summary>
    public void Dispose()
    {
        foreach (var id in _renewals.Keys)
        {
            StopRenewal(id);
        }
    }

    private void StartRenewal(string sessionId, IBotSessionCallbacks callbacks)
    {
        StopRenewal(sessionId);
        var stop = new CancellationTokenSource();
        _renewals[sessionId] = stop;
        _ = RenewAsync(sessionId, callbacks, stop.Token);
    }

    private void StopRenewal(string sessionId)
    {
        if (_renewals.TryRemove(sessionId, out var stop))
        {
            stop.Cancel();
            stop.Dispose();
        }
    }

    /// <summary>A new pairing link after each half lifetime until the session pairs, ends or the service stops.</summary>
    private async Task RenewAsync(string sessionId, IBotSessionCallbacks callbacks, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(_options.QrLifetime / 2, _time, cancellationToken);
                var state = await callbacks.LoadAuthStateAsync(sessionId, cancellationToken);
                if (state is not null && IsDeviceAuthState(state))
                {
                    return;
                }

                await callbacks.UpdateQrAsync(sessionId, CreatePairingLink(_options.PublicBaseUrl, sessionId, NewToken()), ConnectorActor, cancellationToken);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or HoldfastException or ObjectDisposedException or InvalidOperationException)
        {
            // Stopped, ended (a QR for an inactive or connected session is refused), or the service is shutting down.
        }
    }

    /// <summary>The pairing link a QR code of session <paramref name="sessionId"/> encodes.</summary>
    public static string CreatePairingLink(string publicBaseUrl, string sessionId, string token) =>
        $"{publicBaseUrl.TrimEnd('/')}/pair/{Uri.EscapeDataString(sessionId)}?token={Uri.EscapeDataString(token)}";

    /// <summary>
    /// True when <paramref name="token"/> is the token of the pairing link that active <c>web</c> session
    /// <paramref name="session"/> shows now (compared in constant time). A token stops working once the QR changes,
    /// is cleared by pairing, or the session ends.
    /// </summary>
    public static bool VerifyPairingToken(BotSession session, string? token)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (string.IsNullOrEmpty(token) || session.Status != BotSessionStatus.Active || session.BotType != TypeName)
        {
            return false;
        }

        var expected = ReadPairingToken(session);
        return expected is not null
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(token));
    }

    /// <summary>The token of the session's current pairing link, or null when its QR is not one.</summary>
    internal static string? ReadPairingToken(BotSession session)
    {
        if (session.QrData is null || !Uri.TryCreate(session.QrData, UriKind.Absolute, out var uri))
        {
            return null;
        }

        if (!uri.AbsolutePath.EndsWith("/pair/" + Uri.EscapeDataString(session.SessionId), StringComparison.Ordinal))
        {
            return null;
        }

        var tokens = uri.Query.TrimStart('?')
            .Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair => pair.Split('=', 2))
            .Where(pair => string.Equals(Uri.UnescapeDataString(pair[0].Replace('+', ' ')), "token", StringComparison.Ordinal))
            .Select(pair => pair.Length == 2 ? Uri.UnescapeDataString(pair[1].Replace('+', ' ')) : string.Empty)
            .ToList();
        return tokens.Count == 1 && tokens[0].Length > 0 ? tokens[0] : null;
    }

    internal static string NewToken() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    internal static byte[] DeviceAuthState(string deviceKey) =>
        Encoding.UTF8.GetBytes(DeviceStatePrefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(deviceKey))));

    internal static bool IsDeviceAuthState(ReadOnlySpan<byte> state) => state.StartsWith(Encoding.UTF8.GetBytes(DeviceStatePrefix));

    internal static bool VerifyDeviceKey(ReadOnlySpan<byte> state, string deviceKey) =>
        IsDeviceAuthState(state) && CryptographicOperations.FixedTimeEquals(state, DeviceAuthState(deviceKey));
}
