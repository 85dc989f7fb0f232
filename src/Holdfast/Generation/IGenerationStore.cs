using Holdfast.Sessions;

namespace Holdfast.Generation;

/// <summary>
/// A session to insert: a new start (<see cref="ForkedFrom"/> null) or a fork. The store writes it <c>queued</c> with
/// desired state <c>running</c>, version 1, its log (<see cref="InitialOutput"/> as chunk seq 1 when not empty, then
/// the <c>queued</c> status event) and the audit event, in one transaction.
/// </summary>
public sealed record NewGeneration(
    string Id,
    string Owner,
    string Backend,
    string Model,
    IReadOnlyList<GenerationMessage> Input,
    GenerationParameters Parameters,
    IReadOnlyDictionary<string, string>? Metadata,
    string? PreviousSessionId,
    string? IdempotencyKey,
    string? RequestHash,
    string? ForkedFrom = null,
    long? ForkedAtSeq = null,
    string InitialOutput = "",
    long InitialOutputTokens = 0);

/// <summary>The session after a change, and the status event it wrote (null when the status did not change).</summary>
public sealed record GenerationChange(GenerationSession Session, GenerationLogEvent? StatusEvent, bool Changed);

/// <summary>What a create did: <see cref="Created"/> false when the idempotency key already named a session (returned as it is).</summary>
public sealed record GenerationCreateResult(GenerationChange Change, bool Created);

/// <summary>
/// Port: generation sessions as the use cases see them (start, read, control, fork, delete, read and compact the log).
/// Every change is one atomic unit: the session row, its log event(s) and its audit event commit together or not at
/// all. The rules are the core's pure functions (<see cref="GenerationStateMachine"/>, <see cref="GenerationRules"/>):
/// an implementation reads the row inside its transaction, asks the rule, and writes what the rule decided. Semantics
/// every implementation must keep are in <c>docs/storage-ports.md</c> and tested by <c>tests/Holdfast.Storage.Contract</c>.
/// Owner scoping: <c>ownerScope</c> null sees every owner; otherwise a session of another owner is treated as missing.
/// </summary>
public interface IGenerationStore
{
    /// <summary>
    /// Inserts <paramref name="session"/> <c>queued</c>, or, when its owner already used its
    /// <see cref="NewGeneration.IdempotencyKey"/>, returns that session unchanged (<c>Created = false</c>) after
    /// <see cref="GenerationRules.CheckIdempotentRetry"/> (a different request hash is a
    /// <see cref="SessionConflictException"/>). Concurrent creates with one key give exactly one session. Completes
    /// once durable.
    /// </summary>
    Task<GenerationCreateResult> CreateAsync(NewGeneration session, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>
    /// Creates <paramref name="newId"/> as a fork of <paramref name="parentId"/> at <paramref name="atSeq"/> (null: the
    /// parent's last seq): <see cref="GenerationRules.CheckFork"/> decides the seq on the parent as read in the
    /// transaction; the fork's output is the parent's chunks up to it. Throws <see cref="SessionNotFoundException"/>.
    /// </summary>
    Task<GenerationChange> ForkAsync(string parentId, string? ownerScope, long? atSeq, string newId, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>The session, or null when it does not exist or belongs to another owner.</summary>
    Task<GenerationSession?> FindAsync(string id, string? ownerScope, CancellationToken cancellationToken = default);

    /// <summary>Sessions newest first (id descending), filtered by owner and status, one page after the cursor.</summary>
    Task<GenerationPage> ListAsync(GenerationListQuery query, CancellationToken cancellationToken = default);

    /// <summary>
    /// Applies a user control (pause, resume, cancel) decided by <see cref="GenerationStateMachine.ApplyOrThrow"/> on the
    /// row as read in the transaction, as a compare-and-swap on (status, version). A control that already holds
    /// changes nothing and succeeds whatever <paramref name="expectedVersion"/>; otherwise a stale
    /// <paramref name="expectedVersion"/> is a <see cref="SessionConflictException"/> and nothing is written.
    /// </summary>
    Task<GenerationChange> ApplyControlAsync(
        string id, string? ownerScope, GenerationCommand command, Actor actor, long? expectedVersion, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes the session and its log when <see cref="GenerationRules.CheckDelete"/> allows it (not running); the
    /// audit trail keeps a <see cref="Audit.AuditActions.Delete"/> event. Throws <see cref="SessionNotFoundException"/>.
    /// </summary>
    Task DeleteAsync(string id, string? ownerScope, Actor actor, CancellationToken cancellationToken = default);

    /// <summary>Log events with seq &gt; <paramref name="afterSeq"/>, in seq order, at most <paramref name="limit"/>; null when the session is not found.</summary>
    Task<IReadOnlyList<GenerationLogEvent>?> ReadLogAsync(string id, string? ownerScope, long afterSeq, int limit, CancellationToken cancellationToken = default);

    /// <summary>Like <see cref="ReadLogAsync"/> without the owner check (followers already authorised); empty for a missing session.</summary>
    Task<IReadOnlyList<GenerationLogEvent>> ReadLogAfterAsync(string id, long afterSeq, int limit, CancellationToken cancellationToken = default);

    /// <summary>The highest committed log seq of the session (0 when it has no log or does not exist). One indexed read.</summary>
    Task<long> ReadDurableSeqAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>The seq of the one chunk a compacted log holds the whole output in; null when the log was not compacted.</summary>
    Task<long?> ReadCompactedChunkSeqAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>
    /// The retention sweep: for at most <paramref name="limit"/> sessions that became completed or cancelled before
    /// <paramref name="finishedBefore"/> and are not compacted yet (oldest first), replaces all chunk rows by one chunk
    /// holding the whole output at the seq of the last chunk (status events stay), marks the session compacted and
    /// writes a <see cref="Audit.AuditActions.CompactLog"/> event, one transaction. Returns how many it compacted.
    /// </summary>
    Task<int> CompactFinishedLogsAsync(DateTimeOffset finishedBefore, int limit, CancellationToken cancellationToken = default);
}
