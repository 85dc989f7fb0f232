using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Holdfast.Generation.Backends;

/// <summary>What a scripted run emits: the chunks after the prefix, and why it ends.</summary>
public sealed record ScriptedPlan(IReadOnlyList<string> Chunks, string FinishReason, int InputTokens);

/// <summary>
/// The deterministic <c>scripted</c> backend, for tests and demos (not a language model). Its text is a pure
/// function of the conversation and the seed (<see cref="ScriptedText"/>); a trailing assistant message is taken as
/// a prefix (prefill) and the stream continues after it exactly, so interrupted and uninterrupted runs produce the
/// same bytes. Speed and length come from <see cref="ScriptedBackendOptions"/>.
/// </summary>
public sealed class ScriptedChatClient : IChatClient
{
    private readonly ScriptedBackendOptions _options;
    private readonly TimeProvider _time;

    public ScriptedChatClient(ScriptedBackendOptions options, TimeProvider? timeProvider = null)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>
    /// Plans a run: skips the tokens covered by <paramref name="prefix"/>, then emits until the total reaches
    /// <c>min(configuredMax, tokensInPrefix + remainingTokens)</c> or a stop sequence appears.
    /// </summary>
    public static ScriptedPlan Plan(
        IReadOnlyList<ChatMessage> conversation,
        string prefix,
        long? seed,
        int? remainingTokens,
        int configuredMax,
        IReadOnlyList<string>? stop)
    {
        ArgumentNullException.ThrowIfNull(conversation);
        ArgumentNullException.ThrowIfNull(prefix);
        using var tokens = ScriptedText.Tokens(ScriptedText.StreamSeed(conversation, seed), ScriptedText.PromptWords(conversation)).GetEnumerator();
        var consumed = 0;
        var covered = string.Empty;
        var buffer = new System.Text.StringBuilder();
        while (buffer.Length < prefix.Length && tokens.MoveNext())
        {
            buffer.Append(tokens.Current);
            consumed++;
        }

        covered = buffer.ToString();
        var leftover = covered.Length > prefix.Length && covered.StartsWith(prefix, StringComparison.Ordinal)
            ? covered[prefix.Length..]
            : string.Empty;
        var tokensInPrefix = leftover.Length > 0 ? consumed - 1 : consumed;
        var byRequest = remainingTokens is { } remaining ? (long)tokensInPrefix + Math.Max(0, remaining) : long.MaxValue;
        var total = (int)Math.Min(configuredMax, byRequest);
        var finish = byRequest < configuredMax ? "length" : "stop";

        var chunks = new List<string>();
        var emitted = tokensInPrefix;
        var text = new System.Text.StringBuilder(prefix);
        var stops = stop?.Where(s => !string.IsNullOrEmpty(s)).ToList() ?? [];
        var longestStop = stops.Count == 0 ? 0 : stops.Max(s => s.Length);
        while (emitted < total)
        {
            string next;
            if (leftover.Length > 0)
            {
                next = leftover;
                leftover = string.Empty;
            }
            else if (tokens.MoveNext())
            {
                next = tokens.Current;
            }
            else
            {
                break;
            }

            emitted++;
            if (stops.Count > 0)
            {
                var before = text.Length;
                text.Append(next);
                var from = Math.Max(0, before - (longestStop - 1));
                var window = text.ToString(from, text.Length - from);
                var at = stops.Select(s => window.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
                if (at >= 0)
                {
                    var cut = from + at - before;
                    if (cut > 0)
                    {
                        chunks.Add(next[..cut]);
                    }

                    return new ScriptedPlan(chunks, "stop", CountInputTokens(conversation));
                }
            }

            chunks.Add(next);
        }

        return new ScriptedPlan(chunks, finish, CountInputTokens(conversation));
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages,
        ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages.ToList();
        var prefix = string.Empty;
        if (list.Count > 0 && list[^1].Role == ChatRole.Assistant)
        {
            prefix = list[^1].Text;
            list.RemoveAt(list.Count - 1);
        }

        var plan = Plan(list, prefix, options?.Seed, options?.MaxOutputTokens, _options.MaxTokens, options?.StopSequences?.ToList());
        var started = _time.GetTimestamp();
        var rate = _options.TokensPerSecond;
        var responseId = "scripted-" + Guid.NewGuid().ToString("N");
        for (var i = 0; i < plan.Chunks.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (rate > 0)
            {
                var due = TimeSpan.FromSeconds((i + 1) / rate) - _time.GetElapsedTime(started);
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due, _time, cancellationToken);
                }
            }
            else if (i % 64 == 63)
            {
                await Task.Yield();
            }

            yield return new ChatResponseUpdate(ChatRole.Assistant, plan.Chunks[i]) { ResponseId = responseId, ModelId = "scripted" };
        }

        yield return new ChatResponseUpdate
        {
            Role = ChatRole.Assistant,
            ResponseId = responseId,
            ModelId = "scripted",
            FinishReason = plan.FinishReason == "length" ? ChatFinishReason.Length : ChatFinishReason.Stop,
            Contents = [new UsageContent(new UsageDetails { InputTokenCount = plan.InputTokens, OutputTokenCount = plan.Chunks.Count })],
        };
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType?.IsInstanceOfType(this) == true ? this : null;

    public void Dispose()
    {
    }

    private static int CountInputTokens(IReadOnlyList<ChatMessage> conversation) =>
        conversation.Sum(m => m.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);
}
