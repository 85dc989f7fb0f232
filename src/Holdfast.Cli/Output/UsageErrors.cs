using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Holdfast.Cli.Output;

/// <summary>
/// Turns System.CommandLine's parse errors into one sentence. A mistyped flag is named (with the closest real one):
/// the parser would otherwise take it for the prompt and complain about the words after it instead.
/// </summary>
internal static partial class UsageErrors
{
    public static string Describe(ParseResult parseResult)
    {
        var command = parseResult.CommandResult.Command;
        var path = CommandPath(parseResult.CommandResult);
        var known = command.Options.Concat(parseResult.RootCommandResult.Command.Options.Where(o => o.Recursive))
            .SelectMany(o => o.Aliases.Prepend(o.Name))
            .Append("--help").Append("-h").Append("-?")
            .ToHashSet(StringComparer.Ordinal);
        foreach (var token in parseResult.Tokens)
        {
            if (token.Type == TokenType.DoubleDash)
            {
                break;
            }

            if (token.Type is TokenType.Argument or TokenType.Option
                && token.Value.Length > 1
                && token.Value[0] == '-'
                && !known.Contains(token.Value)
                && !double.TryParse(token.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            {
                var name = token.Value.Split('=', 2)[0];
                if (known.Contains(name))
                {
                    continue;
                }

                var closest = known.Where(k => k.StartsWith("--", StringComparison.Ordinal))
                    .Select(k => (Name: k, Distance: Distance(k, name)))
                    .Where(k => k.Distance <= Math.Max(2, name.Length / 3))
                    .OrderBy(k => k.Distance)
                    .Select(k => k.Name)
                    .FirstOrDefault();
                return $"unknown option '{name}' for '{path}'{(closest is null ? string.Empty : $" (did you mean '{closest}'?)")}; see '{path} --help'.";
            }
        }

        var message = parseResult.Errors
            .OrderByDescending(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal))
            .First().Message;
        message = TypeName().Replace(message, match => match.Groups["type"].Value switch
        {
            var t when t.Contains("Int", StringComparison.Ordinal) => ": expected a whole number",
            var t when t.Contains("Double", StringComparison.Ordinal) || t.Contains("Single", StringComparison.Ordinal) => ": expected a number",
            var t when t.Contains("Boolean", StringComparison.Ordinal) => ": expected true or false",
            _ => string.Empty,
        });
        return $"{message.TrimEnd('.')}; see '{path} --help'.";
    }

    private static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? current = result; current is CommandResult command; current = command.Parent)
        {
            names.Add(command.Command is RootCommand ? "holdfast" : command.Command.Name);
        }

        names.Reverse();
        return string.Join(' ', names);
    }

    private static int Distance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            previous = current;
        }

        return previous[b.Length];
    }

    [GeneratedRegex(" as expected type '(?<type>[^']*)'", RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture, 1000)]
    private static partial Regex TypeName();
}
