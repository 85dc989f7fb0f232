namespace Holdfast.Bots;

/// <summary>
/// The lease a node holds on one bot session: its connector runs the bot's connection there. <see cref="Epoch"/> (the
/// row's <c>lease_epoch</c>) grows with every claim and takeover, so a write carrying an older lease is refused with
/// <see cref="Sessions.LeaseLostException"/>: a node that wakes from a long pause cannot overwrite the new holder's QR,
/// status, last message or login state.
/// </summary>
public sealed record BotLease(string SessionId, string NodeId, long Epoch, DateTimeOffset ExpiresAt);

/// <summary>A lease to take for <paramref name="NodeId"/>, valid for <paramref name="Duration"/> from when it is written.</summary>
public sealed record BotLeaseRequest(string NodeId, TimeSpan Duration);

/// <summary>The name of the store setting that keeps the bot login-state key's fingerprint (never the key).</summary>
public static class BotStoreSettings
{
    /// <summary>HMAC-SHA-256 of a fixed label under <see cref="BotOptions.AuthStateKey"/>, hex; written by the first start.</summary>
    public const string AuthKeyFingerprint = "bot_auth_key_fingerprint";
}
