namespace Holdfast.TestHelpers;

/// <summary>
/// README samples kept in test sources: a test runs the code between two marker comments, and checks that README.md
/// shows exactly that code.
/// </summary>
public static class ReadmeCode
{
    /// <summary>README.md, with LF line ends.</summary>
    public static async Task<string> ReadReadmeAsync() =>
        (await System.IO.File.ReadAllTextAsync(RepositoryRoot.File("README.md"))).Replace("\r\n", "\n", StringComparison.Ordinal);

    /// <summary>
    /// The lines of <paramref name="sourceFile"/> (a path inside the repository) between the lines that are exactly
    /// <paramref name="begin"/> and <paramref name="end"/> (once trimmed), without their common indentation.
    /// </summary>
    public static async Task<string> BetweenAsync(string[] sourceFile, string begin, string end) =>
        LinesBetween(await System.IO.File.ReadAllLinesAsync(RepositoryRoot.File(sourceFile)), begin, end);

    /// <summary>The lines between <paramref name="begin"/> and <paramref name="end"/>, without their common indentation.</summary>
    public static string LinesBetween(string[] lines, string begin, string end)
    {
        var start = Array.FindIndex(lines, l => l.Trim() == begin) + 1;
        var stop = Array.FindIndex(lines, l => l.Trim() == end);
        if (start <= 0 || stop < start)
        {
            throw new InvalidOperationException($"No '{begin}' … '{end}' lines in that file.");
        }

        var block = lines[start..stop];
        var indent = block.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        return string.Join('\n', block.Select(l => l.Length >= indent ? l[indent..] : l.Trim()));
    }
}
