namespace Holdfast.Sessions;

/// <summary>Base of every error Holdfast reports on purpose; the message is written for a person.</summary>
public abstract class HoldfastException : Exception
{
    protected HoldfastException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>The session does not exist, or belongs to someone else (the two are indistinguishable on purpose).</summary>
public sealed class SessionNotFoundException : HoldfastException
{
    public SessionNotFoundException(SessionKind kind, string sessionId)
        : base($"No {kind.ToWire()} session '{sessionId}' was found.")
    {
        Kind = kind;
        SessionId = sessionId;
    }

    public SessionKind Kind { get; }

    public string SessionId { get; }
}

/// <summary>
/// The request cannot be applied to the session in its current state (an illegal transition, or a concurrent
/// change won the optimistic-concurrency race). Nothing was changed.
/// </summary>
public sealed class SessionConflictException : HoldfastException
{
    public SessionConflictException(string message, string? currentState = null, string? requestedState = null)
        : base(message)
    {
        CurrentState = currentState;
        RequestedState = requestedState;
    }

    public string? CurrentState { get; }

    public string? RequestedState { get; }
}

/// <summary>
/// A new bot session cannot take this id: a session with it exists and is not the caller's (another user's, or one
/// without an owner). The message is the same in both cases, so it tells a stranger nothing about whose it is.
/// Nothing was changed. An operator gives an ownerless bot an owner explicitly (<c>holdfast bot assign</c>).
/// </summary>
public sealed class BotIdUnavailableException : HoldfastException
{
    /// <summary>The problem code of this error on the wire.</summary>
    public const string Code = "bot_id_unavailable";

    public BotIdUnavailableException(string sessionId)
        : base("This bot id is not available: choose another id.")
    {
        SessionId = sessionId;
    }

    public string SessionId { get; }
}

/// <summary>
/// The backend a new generation would run on does not serve the requested model (it lists the ones it does).
/// Nothing was stored.
/// </summary>
public sealed class ModelNotFoundException : HoldfastException
{
    /// <summary>The problem code of this error on the wire (as OpenAI's API answers).</summary>
    public const string Code = "model_not_found";

    public ModelNotFoundException(string model, string backend, IReadOnlyList<string> served)
        : base(
            $"The model '{(model.Length <= 80 ? model : model[..80] + "…")}' does not exist on backend '{backend}'; it serves: " +
            $"{(served.Count == 0 ? "none" : string.Join(", ", served.Take(20)) + (served.Count > 20 ? ", …" : string.Empty))}.")
    {
        Model = model;
        Backend = backend;
        Served = served;
    }

    public string Model { get; }

    public string Backend { get; }

    public IReadOnlyList<string> Served { get; }
}

/// <summary>Input failed validation (bad id, oversized payload, missing field). Nothing was changed.</summary>
public sealed class InvalidSessionInputException : HoldfastException
{
    public InvalidSessionInputException(string field, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Field = field;
    }

    public string Field { get; }
}

/// <summary>The database schema does not match this version of Holdfast (tampered, or newer than the code).</summary>
public sealed class StoreSchemaException : HoldfastException
{
    public StoreSchemaException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>The store could not be reached or refused the operation for a reason that is not the caller's input.</summary>
public sealed class StoreUnavailableException : HoldfastException
{
    public StoreUnavailableException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }

    /// <summary>When the condition is expected to pass by itself (a full disk): how long a client should wait before retrying.</summary>
    public TimeSpan? RetryAfter { get; init; }
}

/// <summary>
/// The store setting cannot work as given: a connection string that does not parse, a wrong password, a database that
/// does not exist. Nothing was written; the message says which setting to fix (and never shows a password).
/// </summary>
public sealed class StoreConfigurationException : HoldfastException
{
    public StoreConfigurationException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A run's write carried a fencing token that is no longer its session's lease epoch: another node (or the recovery
/// sweep) took the session over. Nothing of the write was stored; the run must stop.
/// </summary>
public sealed class LeaseLostException : HoldfastException
{
    public LeaseLostException(IReadOnlyCollection<string> sessionIds)
        : base($"The lease on {string.Join(", ", sessionIds.Select(id => $"'{id}'"))} was lost (another holder or the recovery sweep took it over); nothing was written for it.")
    {
        SessionIds = sessionIds;
    }

    /// <summary>The sessions whose writes were refused.</summary>
    public IReadOnlyCollection<string> SessionIds { get; }
}

/// <summary>The configured store cannot do this (e.g. the SQLite online backup on PostgreSQL); the message says what to use instead.</summary>
public sealed class StoreFeatureNotSupportedException : HoldfastException
{
    public StoreFeatureNotSupportedException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// This node encrypts bot login state with another key than the one the store's other nodes use (its fingerprint differs
/// from the one stored by the first start): it must not start, or it could not read their bots' login state.
/// </summary>
public sealed class BotAuthKeyMismatchException(string storedFingerprint, string fingerprint)
    : HoldfastException(
        $"Bots:AuthStateKey does not match the key this database's other nodes use (stored key fingerprint {storedFingerprint[..12]}…, this node's {fingerprint[..12]}…): " +
        "give every node the same Bots:AuthStateKey (base64 of 32 bytes; without it each data directory makes its own key file).")
{
    /// <summary>The fingerprint stored in the database.</summary>
    public string StoredFingerprint { get; } = storedFingerprint;
}
