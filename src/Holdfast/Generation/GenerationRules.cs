using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Holdfast.Sessions;

namespace Holdfast.Generation;

/// <summary>How a run continues output that already exists (recorded as <see cref="GenerationSession.Continuation"/>).</summary>
public static class ContinuationModes
{
    /// <summary>The output is given to the backend as an assistant prefix it continues.</summary>
    public const string Prefill = "prefill";

    /// <summary>The backend cannot prefill: it gets the output and an instruction to continue it.</summary>
    public const string FallbackInstruction = "fallback:instruction";

    /// <summary>The mode for a run: null when there is no output yet, else prefill when the backend supports it.</summary>
    public static string? For(bool hasOutput, bool supportsPrefill) =>
        !hasOutput ? null : supportsPrefill ? Prefill : FallbackInstruction;
}

/// <summary>
/// The rules of generation sessions besides the state machine, as pure functions: every store asks them inside its
/// transaction and writes what they decide, so no provider carries a rule of its own.
/// </summary>
public static class GenerationRules
{
    /// <summary>The actor of the runner's own writes.</summary>
    public static readonly Actor RunnerActor = Actor.System("runner");

    /// <summary>
    /// A start with an idempotency key its owner already used: the same request (same hash) gets the existing session
    /// back; a different request is refused with <see cref="SessionConflictException"/>.
    /// </summary>
    public static void CheckIdempotentRetry(string idempotencyKey, GenerationSession existing, string? storedRequestHash, string? requestHash)
    {
        ArgumentNullException.ThrowIfNull(existing);
        if (!string.Equals(storedRequestHash, requestHash, StringComparison.Ordinal))
        {
            throw new SessionConflictException(
                $"The Idempotency-Key '{idempotencyKey}' was already used for a different request (session '{existing.Id}'); use a new key for a new generation.");
        }
    }

    /// <summary>
    /// SHA-256 over the canonical JSON of what makes two starts the same request (model, backend, input, parameters,
    /// previous session, metadata sorted by key); lower-case hex.
    /// </summary>
    public static string RequestHash(CreateGenerationRequest request, string backend, GenerationParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(request);
        var canonical = GenerationJson.Serialize(new
        {
            request.Model,
            Backend = backend,
            request.Input,
            Parameters = parameters,
            request.PreviousSessionId,
            Metadata = request.Metadata?.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList(),
        });
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    /// <summary>
    /// Where a fork of <paramref name="parent"/> starts: <paramref name="atSeq"/>, or the parent's last seq. Refuses a seq
    /// outside 0..last, and a seq inside a compacted log (its chunk boundaries are gone: only 0 and the whole output).
    /// </summary>
    /// <exception cref="InvalidSessionInputException">The seq cannot be forked at.</exception>
    public static long CheckFork(GenerationSession parent, long? atSeq)
    {
        ArgumentNullException.ThrowIfNull(parent);
        var at = atSeq ?? parent.LastSeq;
        if (at < 0 || at > parent.LastSeq)
        {
            throw new InvalidSessionInputException(
                "at_seq",
                string.Create(CultureInfo.InvariantCulture, $"'at_seq' must be between 0 and {parent.LastSeq} (the last persisted event of session '{parent.Id}'); it is {at}."));
        }

        if (parent.LogCompacted && at > 0 && at < parent.LastSeq)
        {
            throw new InvalidSessionInputException(
                "at_seq",
                string.Create(CultureInfo.InvariantCulture, $"The event log of session '{parent.Id}' was compacted (Generation:LogRetention), so its chunk boundaries are gone; fork it at 0 or at {parent.LastSeq} (its whole output)."));
        }

        return at;
    }

    /// <summary>Output tokens a fork starts with: the parent's count when it takes the whole output, else one per chunk taken.</summary>
    public static long ForkOutputTokens(GenerationSession parent, long atSeq, long chunksTaken)
    {
        ArgumentNullException.ThrowIfNull(parent);
        return atSeq == parent.LastSeq ? parent.Usage.OutputTokens : chunksTaken;
    }

    /// <summary>The audit detail of a create (the actor's reason) or a fork (where it came from).</summary>
    public static string? CreateDetail(NewGeneration session, Actor actor)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(actor);
        return session.ForkedFrom is null
            ? actor.Reason
            : string.Create(CultureInfo.InvariantCulture, $"forked from {session.ForkedFrom} at seq {session.ForkedAtSeq}");
    }

    /// <summary>A running session cannot be deleted (its runner still writes to it).</summary>
    /// <exception cref="SessionConflictException">The session is running.</exception>
    public static void CheckDelete(GenerationSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (session.Status == GenerationStatus.Running)
        {
            throw new SessionConflictException("The session is running; pause or cancel it before deleting it.", "running", "deleted");
        }
    }

    /// <summary>
    /// The command (and actor) a run ending is written with, given the row as stored after this commit's chunks: a
    /// <see cref="GenerationCommandKind.Complete"/> whose run produced more than the log holds (a group commit was given
    /// up: a gap) becomes an interrupt under the run's recovery policy, so the next run regenerates the missing text
    /// and no session ever completes with a hole.
    /// </summary>
    public static (GenerationCommand Command, Actor Actor) DecideRunEnd(GenerationSession stored, RunFinish finish)
    {
        ArgumentNullException.ThrowIfNull(stored);
        ArgumentNullException.ThrowIfNull(finish);
        if (finish.Command.Kind == GenerationCommandKind.Complete && stored.LastSeq != finish.LastSeq)
        {
            return (
                GenerationCommand.Interrupt(finish.Recovery),
                Actor.System(
                    "runner",
                    string.Create(CultureInfo.InvariantCulture, $"output lost in a failed group commit (stored up to seq {stored.LastSeq}, produced up to {finish.LastSeq}); regenerated by the next run")));
        }

        return (finish.Command, RunnerActor);
    }

    /// <summary>
    /// How many of the <paramref name="offered"/> queued sessions a node may claim now: its fair share of every running
    /// and queued session over the live nodes (itself included), less what it holds already (between zero and <paramref name="offered"/>). Every
    /// node computing its share this way leaves no session out (the shares add up to at least the total), and the
    /// sessions of a dead node go to the survivors in equal parts when they held equal parts before.
    /// </summary>
    public static int ClaimShare(ClaimLoad load, int offered)
    {
        ArgumentNullException.ThrowIfNull(load);
        var nodes = Math.Max(0, load.OtherLiveNodes) + 1;
        var total = (long)Math.Max(0, load.HeldByOthers) + Math.Max(0, load.HeldByNode) + Math.Max(0, offered);
        var share = (total + nodes - 1) / nodes;
        return (int)Math.Clamp(share - load.HeldByNode, 0, Math.Max(0, offered));
    }

    /// <summary>What the recovery sweep applies to a session whose runner is gone, and as whom.</summary>
    public static (GenerationCommand Command, Actor Actor) Recovery(GenerationRecoveryPolicy policy) =>
        (GenerationCommand.Interrupt(policy),
         Actor.System("recovery", policy == GenerationRecoveryPolicy.Manual ? "recovery policy manual" : "recovery policy auto"));

    /// <summary>The audit detail of a transition: the error, else a pause's reason, else the actor's reason.</summary>
    public static string? TransitionDetail(GenerationTransition transition, Actor actor, string? error)
    {
        ArgumentNullException.ThrowIfNull(transition);
        ArgumentNullException.ThrowIfNull(actor);
        return error ?? (transition.Command.Kind == GenerationCommandKind.Pause ? transition.To.PauseReason : null) ?? actor.Reason;
    }

    /// <summary>The status event a transition appends (null when the status does not change).</summary>
    public static GenerationStatusChange? StatusEventFor(GenerationTransition transition, string? error, string? finishReason)
    {
        ArgumentNullException.ThrowIfNull(transition);
        if (!transition.StatusChanged)
        {
            return null;
        }

        var to = transition.To;
        return new GenerationStatusChange(
            to.Status,
            to.Status == GenerationStatus.Paused ? to.PauseReason : null,
            to.Status == GenerationStatus.Failed ? error : null,
            to.Status == GenerationStatus.Completed ? finishReason : null);
    }

    /// <summary>The state-machine view of a session.</summary>
    public static GenerationState StateOf(GenerationSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        return new(session.Status, session.DesiredState, session.PauseReason);
    }
}
