using System.Text.Json;
using Holdfast.Client.Models;
using Spectre.Console;

namespace Holdfast.Cli.Output;

/// <summary>
/// Where the CLI writes: results on stdout (tables, ids, JSON), progress and notes on stderr, so a pipe gets only results.
/// Spinners and live views appear only when both are a terminal.
/// </summary>
internal static class Terminal
{
    private static readonly JsonSerializerOptions Indented = new(HoldfastJson.Options) { WriteIndented = true };

    private static readonly Lazy<IAnsiConsole> OutConsole = new(() => Create(Console.Out, Console.IsOutputRedirected));

    private static readonly Lazy<IAnsiConsole> ErrorConsole = new(() => Create(Console.Error, Console.IsErrorRedirected));

    /// <summary>True when stdout and stderr are both a terminal (spinners, live tables, colours).</summary>
    public static bool IsInteractive => !Console.IsOutputRedirected && !Console.IsErrorRedirected;

    /// <summary>Console for results (stdout).</summary>
    public static IAnsiConsole Out => OutConsole.Value;

    /// <summary>Console for progress and notes (stderr).</summary>
    public static IAnsiConsole Error => ErrorConsole.Value;

    /// <summary>Prints <paramref name="value"/> as indented wire JSON (snake_case) on stdout.</summary>
    public static void WriteJson<T>(T value)
    {
        Console.Out.WriteLine(JsonSerializer.Serialize(value, Indented));
    }

    /// <summary>Prints <paramref name="value"/> as one line of wire JSON on stdout (for streams of records).</summary>
    public static void WriteJsonLine<T>(T value)
    {
        Console.Out.WriteLine(JsonSerializer.Serialize(value, HoldfastJson.Options));
        Console.Out.Flush();
    }

    /// <summary>A note for the person at the terminal, on stderr.</summary>
    public static void Note(string markup)
    {
        Error.MarkupLine(markup);
    }

    /// <summary>
    /// Runs <paramref name="work"/> under a spinner on stderr when interactive (and not <paramref name="quiet"/>);
    /// completes when the work does.
    /// </summary>
    public static async Task<T> WithSpinnerAsync<T>(string status, bool quiet, Func<Task<T>> work)
    {
        if (quiet || !IsInteractive)
        {
            return await work();
        }

        return await Error.Status().Spinner(Spinner.Known.Dots).StartAsync(Markup.Escape(status), _ => work());
    }

    /// <summary>
    /// Runs <paramref name="work"/> and shows <paramref name="status"/> on stderr whatever stdout is (so
    /// <c>check --json | jq</c> still shows it): a spinner when stderr is a terminal, else a start line and a
    /// <c>done in N s</c> line, so a log shows long work too. Completes when the work does.
    /// </summary>
    public static async Task<T> WithStderrStatusAsync<T>(string status, Func<Task<T>> work)
    {
        var started = TimeProvider.System.GetTimestamp();
        if (!Console.IsErrorRedirected)
        {
            return await Error.Status().Spinner(Spinner.Known.Dots).StartAsync(Markup.Escape(status + "…"), _ => work());
        }

        await Console.Error.WriteLineAsync(status + "…");
        var result = await work();
        await Console.Error.WriteLineAsync(string.Create(
            System.Globalization.CultureInfo.InvariantCulture,
            $"{status}: done in {TimeProvider.System.GetElapsedTime(started).TotalSeconds:0.0} s"));
        return result;
    }

    /// <summary>
    /// Runs <paramref name="work"/> under a progress bar on stderr when interactive (and not <paramref name="quiet"/>);
    /// the work reports progress through the callback it gets. Without <paramref name="max"/> the bar is indeterminate.
    /// Completes when the work does.
    /// </summary>
    public static async Task<T> WithProgressAsync<T>(string description, double? max, bool quiet, Func<Action<double>, Task<T>> work)
    {
        if (quiet || !IsInteractive)
        {
            return await work(_ => { });
        }

        return await Error.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(Markup.Escape(description), maxValue: max ?? 100);
                task.IsIndeterminate = max is null;
                var result = await work(value => task.Value = max is null ? 0 : Math.Min(value, max.Value));
                task.Value = task.MaxValue;
                return result;
            });
    }

    private static IAnsiConsole Create(TextWriter writer, bool redirected)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = redirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = redirected ? InteractionSupport.No : InteractionSupport.Detect,
        });
        if (redirected)
        {
            // A pipe has no width: do not wrap tables at 80 columns.
            console.Profile.Width = 200;
        }

        return console;
    }
}
