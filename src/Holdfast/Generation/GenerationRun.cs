using Holdfast.Generation.Backends;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace Holdfast.Generation;

/// <summary>
/// One run of one session: builds the conversation (previous sessions, input, output so far as an assistant prefix or
/// the declared fallback), streams it from the backend, fans every chunk out to live followers at once and hands it
/// to the <see cref="GenerationLogWriter"/> under the run's fencing token, and says how the run ended. Writing that
/// ending is the <see cref="GenerationRunner"/>'s job.
/// </summary>
internal sealed class GenerationRun(
    GenerationSession session,
    long fencingToken,
    GenerationBackend backend,
    IGenerationStore store,
    GenerationLogWriter writer,
    GenerationEventHub hub,
    ILogger logger)
{
    /// <summary>Instruction of the declared fallback for backends that cannot prefill.</summary>
    public const string FallbackInstruction =
        "Continue your previous answer exactly where it stopped, without repeating or summarising anything. Output only the continuation.";

    private const int MaxPreviousSessions = 32;

    public string SessionId => session.Id;

    /// <summary>
    /// Streams the run until the backend finishes, fails, or <paramref name="cancellationToken"/> is cancelled (pause,
    /// cancel, lost lease or shutdown: <paramref name="isShutdown"/> tells which). Never throws: every outcome is a
    /// <see cref="RunFinish"/>.
    /// </summary>
    public async Task<RunFinish> ExecuteAsync(CancellationToken cancellationToken, Func<bool> isShutdown, GenerationRecoveryPolicy recovery)
    {
        var seq = session.LastSeq;
        var chunks = 0L;
        string? finishReason = null;
        long? inputTokens = null;
        try
        {
            var messages = await BuildConversationAsync(cancellationToken);
            var remaining = session.Parameters.MaxTokens is { } max ? max - session.Usage.OutputTokens : (long?)null;
            if (remaining <= 0)
            {
                return new RunFinish(session.Id, fencingToken, GenerationCommand.Complete, seq, FinishReason: "length");
            }

            var chatOptions = new ChatOptions
            {
                ModelId = string.Equals(session.Model, "default", StringComparison.OrdinalIgnoreCase) ? backend.DefaultModel ?? session.Model : session.Model,
                Temperature = (float?)session.Parameters.Temperature,
                TopP = (float?)session.Parameters.TopP,
                MaxOutputTokens = remaining is { } r ? (int)Math.Min(r, int.MaxValue) : null,
                Seed = session.Parameters.Seed,
                StopSequences = session.Parameters.Stop?.ToList(),
            };
            await foreach (var update in backend.Client.GetStreamingResponseAsync(messages, chatOptions, cancellationToken).WithCancellation(cancellationToken))
            {
                var text = update.Text;
                if (!string.IsNullOrEmpty(text))
                {
                    seq++;
                    chunks++;
                    hub.Publish(GenerationLogEvent.Chunk(session.Id, seq, text) with { RunEpoch = fencingToken }, persisted: false);
                    await writer.EnqueueAsync(new ChunkAppend(session.Id, fencingToken, seq, text), cancellationToken);
                }

                if (update.FinishReason is { } reason)
                {
                    finishReason = reason.Value;
                }

                foreach (var usage in update.Contents.OfType<UsageContent>())
                {
                    inputTokens = usage.Details.InputTokenCount ?? inputTokens;
                }
            }

            return new RunFinish(
                session.Id, fencingToken, GenerationCommand.Complete, seq, FinishReason: finishReason ?? "stop", InputTokens: inputTokens, Recovery: recovery);
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // Pause, cancel, a lost lease or shutdown cancelled the run's token. However the abort surfaces (an
            // OperationCanceledException, or an IOException/HttpRequestException from a client whose stream was
            // torn down), it is a stop, never a backend failure.
            return new RunFinish(
                session.Id, fencingToken, isShutdown() ? GenerationCommand.Interrupt(recovery) : GenerationCommand.Stop, seq, InputTokens: inputTokens);
        }
#pragma warning disable CA1031 // Any backend failure ends the run as failed with its message; the session stays resumable.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            var message = ex is GenerationBackendException or Sessions.HoldfastException
                ? ex.Message
                : $"Backend '{backend.Name}' failed: {ex.GetType().Name}: {ex.Message}. The partial output is kept and the session can be resumed.";
            Log.GenerationRunFailed(logger, session.Id, backend.Name, chunks, message);
            return new RunFinish(session.Id, fencingToken, GenerationCommand.Fail, seq, Error: message, InputTokens: inputTokens);
        }
    }

    private async Task<List<ChatMessage>> BuildConversationAsync(CancellationToken cancellationToken)
    {
        var chain = new List<GenerationSession>();
        var previousId = session.PreviousSessionId;
        while (previousId is not null && chain.Count < MaxPreviousSessions)
        {
            var previous = await store.FindAsync(previousId, session.Owner, cancellationToken);
            if (previous is null)
            {
                break;
            }

            chain.Add(previous);
            previousId = previous.PreviousSessionId;
        }

        var messages = new List<ChatMessage>();
        for (var i = chain.Count - 1; i >= 0; i--)
        {
            messages.AddRange(chain[i].Input.Select(ToChatMessage));
            if (chain[i].Output.Length > 0)
            {
                messages.Add(new ChatMessage(ChatRole.Assistant, chain[i].Output));
            }
        }

        messages.AddRange(session.Input.Select(ToChatMessage));
        if (session.Output.Length > 0)
        {
            messages.Add(new ChatMessage(ChatRole.Assistant, session.Output));
            if (!backend.SupportsPrefill)
            {
                messages.Add(new ChatMessage(ChatRole.User, FallbackInstruction));
            }
        }

        return messages;
    }

    private static ChatMessage ToChatMessage(GenerationMessage message) => new(new ChatRole(message.Role), message.Content);
}
