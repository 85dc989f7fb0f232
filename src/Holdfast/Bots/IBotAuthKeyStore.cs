using Holdfast.Sessions;

namespace Holdfast.Bots;

/// <summary>
/// Per-key login state of bot sessions (the <c>bot_auth_keys</c> table): a runtime such as Baileys keeps thousands
/// of small signal keys (pre-keys, sessions, sender keys) and changes a few at a time, so each key is its own row
/// instead of one blob rewritten on every change. Values are opaque, already encrypted blobs.
/// </summary>
public interface IBotAuthKeyStore
{
    /// <summary>
    /// The stored values of <paramref name="keyType"/> among <paramref name="keyIds"/> (absent ids are left out).
    /// Completes when read. Throws <see cref="SessionNotFoundException"/> for an unknown session.
    /// </summary>
    Task<IReadOnlyDictionary<string, byte[]>> ReadAuthKeysAsync(string sessionId, string keyType, IReadOnlyCollection<string> keyIds, CancellationToken cancellationToken = default);

    /// <summary>
    /// Applies every change in one transaction: a value stores (inserts or replaces) the key, null deletes it; with
    /// one audit event naming only the counts. Completes once committed; on failure nothing was changed. Throws
    /// <see cref="SessionNotFoundException"/> for an unknown session.
    /// </summary>
    Task WriteAuthKeysAsync(string sessionId, IReadOnlyList<BotAuthKeyChange> changes, Actor actor, CancellationToken cancellationToken = default);
}

/// <summary>One change of <see cref="IBotAuthKeyStore.WriteAuthKeysAsync"/>: store <paramref name="Value"/>, or delete when null.</summary>
public sealed record BotAuthKeyChange(string KeyType, string KeyId, byte[]? Value);
