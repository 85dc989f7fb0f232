using System.Text;
using System.Text.RegularExpressions;

namespace Holdfast.Cli.Tests;

/// <summary>A fenced code block of README.md: where it starts, its section, language and text, and its marker.</summary>
internal sealed record ReadmeBlock(int Line, string Section, string Language, string Body, ReadmeMarker? Marker)
{
    public override string ToString() => $"README.md line {Line} ({Section}, ```{Language})";
}

/// <summary>An HTML comment on the last non-blank line before a block: <c>&lt;!-- name: value --&gt;</c>.</summary>
internal sealed record ReadmeMarker(string Name, string Value);

/// <summary>
/// README's code blocks and the markers that say how they are tested (documented in README's "Working on the code"):
/// <list type="bullet">
/// <item><c>```sh</c>, <c>```bash</c>, <c>```shell</c>: run by <see cref="ReadmeShellBlockTests"/> (the Quick start's and
/// Tour's <c>```bash</c> blocks by <see cref="ReadmeTourTests"/>).</item>
/// <item><c>&lt;!-- not-run: REASON --&gt;</c>: not run by any test, for the reason given (it needs a phone, a remote
/// host, minutes of an idle machine…).</item>
/// <item><c>&lt;!-- stop-after: N s --&gt;</c>: a shell block that runs until stopped (a live stream): it runs for N seconds
/// and is then stopped, as with Ctrl-C; it passes when it has not failed by then.</item>
/// <item><c>&lt;!-- run-by: TestClass --&gt;</c>: a block in another language, run by that test class.</item>
/// <item><c>```text</c> or no language: not code (diagrams, sample output).</item>
/// </list>
/// </summary>
internal static partial class ReadmeBlocks
{
    public const string NotRun = "not-run";
    public const string StopAfter = "stop-after";
    public const string RunBy = "run-by";

    public static readonly IReadOnlyList<string> Markers = [NotRun, StopAfter, RunBy];

    public static bool IsShell(string language) => language is "sh" or "bash" or "shell";

    public static bool IsText(string language) => language is "" or "text";

    public static List<ReadmeBlock> Parse(string readme)
    {
        var lines = readme.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var blocks = new List<ReadmeBlock>();
        var section = "(top)";
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].StartsWith("## ", StringComparison.Ordinal))
            {
                section = lines[i][3..].Trim();
                continue;
            }

            if (!lines[i].StartsWith("```", StringComparison.Ordinal))
            {
                continue;
            }

            var start = i;
            var language = lines[i][3..].Trim();
            var body = new StringBuilder();
            for (i++; i < lines.Length && !lines[i].StartsWith("```", StringComparison.Ordinal); i++)
            {
                body.Append(lines[i]).Append('\n');
            }

            if (i >= lines.Length)
            {
                throw new InvalidOperationException($"README.md line {start + 1}: a code block that is never closed.");
            }

            blocks.Add(new ReadmeBlock(start + 1, section, language, body.ToString(), MarkerBefore(lines, start)));
        }

        return blocks;
    }

    /// <summary>Seconds of a <c>stop-after</c> marker value such as <c>5 s</c> or <c>5s</c>.</summary>
    public static TimeSpan StopAfterDuration(ReadmeMarker marker)
    {
        var match = Seconds().Match(marker.Value);
        if (!match.Success)
        {
            throw new InvalidOperationException($"'<!-- {marker.Name}: {marker.Value} -->' must give seconds, e.g. '<!-- stop-after: 5 s -->'.");
        }

        return TimeSpan.FromSeconds(int.Parse(match.Groups["n"].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    private static ReadmeMarker? MarkerBefore(string[] lines, int fence)
    {
        var j = fence - 1;
        while (j >= 0 && string.IsNullOrWhiteSpace(lines[j]))
        {
            j--;
        }

        if (j < 0)
        {
            return null;
        }

        var match = MarkerPattern().Match(lines[j].Trim());
        return match.Success ? new ReadmeMarker(match.Groups["name"].Value, match.Groups["value"].Value.Trim()) : null;
    }

    [GeneratedRegex(@"^<!--\s*(?<name>[a-z][a-z-]*)\s*:\s*(?<value>.*?)\s*-->$", RegexOptions.None, 1000)]
    private static partial Regex MarkerPattern();

    [GeneratedRegex(@"^(?<n>[0-9]+)\s*s$", RegexOptions.None, 1000)]
    private static partial Regex Seconds();
}
