using System.Text;
using Microsoft.Extensions.AI;

namespace Holdfast.Generation.Backends;

/// <summary>
/// The deterministic token stream of the <c>scripted</c> backend: a pure function of the conversation (roles and
/// texts, without a trailing assistant prefix) and the seed. The stream is prefix-stable (token <c>i</c> never
/// depends on how many tokens are asked for), which is what makes pause/resume with prefill equal the uninterrupted
/// text byte for byte. Also used by the OpenAI-compatible test emulator.
/// </summary>
public static class ScriptedText
{
    private static readonly string[] Vocabulary =
    [
        "holdfast", "keeps", "the", "session", "alive", "across", "restarts", "and", "every", "token", "is", "durable",
        "a", "river", "stone", "moves", "slowly", "through", "quiet", "water", "while", "lanterns", "glow", "over",
        "harbour", "ropes", "hold", "fast", "against", "tide", "wind", "carries", "small", "boats", "home", "before",
        "night", "falls", "on", "old", "pier", "where", "gulls", "wait", "for", "morning", "light", "returns",
    ];

    /// <summary>Seed of the stream for a conversation and a request seed.</summary>
    public static ulong StreamSeed(IEnumerable<ChatMessage> conversation, long? seed)
    {
        ArgumentNullException.ThrowIfNull(conversation);
        var hash = 14695981039346656037UL;
        foreach (var message in conversation)
        {
            hash = Mix(hash, message.Role.Value);
            hash = Mix(hash, "\u001f");
            hash = Mix(hash, message.Text);
            hash = Mix(hash, "\u001e");
        }

        return hash ^ (ulong)(seed ?? 0);
    }

    /// <summary>The infinite token stream for <paramref name="streamSeed"/>; <paramref name="promptWords"/> are mixed in.</summary>
    public static IEnumerable<string> Tokens(ulong streamSeed, IReadOnlyList<string> promptWords)
    {
        ArgumentNullException.ThrowIfNull(promptWords);
        var state = streamSeed;
        var sentenceStart = true;
        var sentenceLength = 0;
        for (var i = 0; ; i++)
        {
            var roll = Next(ref state);
            var word = promptWords.Count > 0 && roll % 5 == 0
                ? promptWords[(int)((roll >> 8) % (ulong)promptWords.Count)]
                : Vocabulary[(int)((roll >> 16) % (ulong)Vocabulary.Length)];
            if (sentenceStart)
            {
                word = char.ToUpperInvariant(word[0]) + word[1..];
            }

            sentenceLength++;
            var endSentence = sentenceLength >= 4 && (roll >> 40) % 7 == 0;
            var token = (i == 0 ? string.Empty : " ") + word + (endSentence ? "." : string.Empty);
            sentenceStart = endSentence;
            if (endSentence)
            {
                sentenceLength = 0;
            }

            yield return token;
        }
    }

    /// <summary>Words of the last user message (letters and digits only, at most 32), mixed into the text.</summary>
    public static IReadOnlyList<string> PromptWords(IEnumerable<ChatMessage> conversation)
    {
        var lastUser = conversation.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? string.Empty;
        var words = new List<string>();
        var current = new StringBuilder();
        foreach (var c in lastUser)
        {
            if (char.IsLetterOrDigit(c))
            {
                current.Append(char.ToLowerInvariant(c));
            }
            else if (current.Length > 0)
            {
                words.Add(current.ToString());
                current.Clear();
            }
        }

        if (current.Length > 0)
        {
            words.Add(current.ToString());
        }

        return words.Where(w => w.Length > 1).Take(32).ToList();
    }

    /// <summary>The whole text an uninterrupted scripted run produces (for tests and the emulator).</summary>
    public static string FullText(IReadOnlyList<ChatMessage> conversation, long? seed, int tokens) =>
        string.Concat(Tokens(StreamSeed(conversation, seed), PromptWords(conversation)).Take(tokens));

    private static ulong Mix(ulong hash, string? text)
    {
        foreach (var c in text ?? string.Empty)
        {
            hash ^= c;
            hash *= 1099511628211UL;
        }

        return hash;
    }

    // SplitMix64: small, fast, and the same on every platform.
    private static ulong Next(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        var z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
