using System.CommandLine;
using System.Globalization;
using Holdfast.Client;
using Holdfast.Client.Models;
using Holdfast.Cli.Output;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Holdfast.Cli.Commands;

// The client DTO, not the core's Holdfast.Generation namespace (which wins name lookup inside Holdfast.*).
using Generation = Holdfast.Client.Models.Generation;

/// <summary><c>holdfast top</c>: a live table of generation and bot sessions, refreshed until q or Ctrl-C.</summary>
internal static class TopCommand
{
    public static void AddTo(RootCommand root)
    {
        var once = new Option<bool>("--once") { Description = "Print one frame and exit (for scripts)." };
        var interval = new Option<double>("--interval") { Description = "Seconds between refreshes.", DefaultValueFactory = _ => 1 };
        var limit = new Option<int>("--limit", "-n") { Description = "Rows per table.", DefaultValueFactory = _ => 20 };
        var json = GenerationCommands.JsonOption();
        json.Description = "With --once: print the frame as JSON ({generations, bots}).";
        var command = new Command("top", "Live table of sessions (q or Ctrl-C to quit).") { once, interval, limit, json };
        ServerConnection.AddTo(command);
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var rows = parseResult.GetValue(limit);
            var seconds = parseResult.GetValue(interval);
            if (rows <= 0 || seconds <= 0)
            {
                throw new UsageException("--limit and --interval must be positive.");
            }

            if (parseResult.GetValue(once) || parseResult.GetValue(json))
            {
                var frame = await ReadFrameAsync(client, rows, cancellationToken);
                if (parseResult.GetValue(json))
                {
                    Terminal.WriteJson(new { generations = frame.Generations, bots = frame.Bots });
                }
                else
                {
                    Terminal.Out.Write(Render(frame, client));
                }

                return ExitCodes.Ok;
            }

            using var quit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var keys = Console.IsInputRedirected ? Task.CompletedTask : WatchForQuitAsync(quit);
            var period = TimeSpan.FromSeconds(seconds);
            try
            {
                if (!Terminal.IsInteractive)
                {
                    while (!quit.IsCancellationRequested)
                    {
                        Terminal.Out.Write(Render(await ReadFrameAsync(client, rows, quit.Token), client));
                        Terminal.Out.WriteLine();
                        await Task.Delay(period, TimeProvider.System, quit.Token);
                    }
                }
                else
                {
                    var first = await ReadFrameAsync(client, rows, quit.Token);
                    await Terminal.Out.Live(Render(first, client)).AutoClear(false).StartAsync(async live =>
                    {
                        while (!quit.IsCancellationRequested)
                        {
                            await Task.Delay(period, TimeProvider.System, quit.Token);
                            live.UpdateTarget(Render(await ReadFrameAsync(client, rows, quit.Token), client));
                        }
                    });
                }
            }
            catch (OperationCanceledException) when (quit.IsCancellationRequested)
            {
                // q or Ctrl-C: a normal way to leave top.
            }

            await quit.CancelAsync();
            await keys.WaitAsync(TimeSpan.FromSeconds(1), TimeProvider.System, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
            return ExitCodes.Ok;
        });
        root.Subcommands.Add(command);
    }

    internal sealed record Frame(IReadOnlyList<Generation> Generations, IReadOnlyList<Bot> Bots, DateTimeOffset At);

    private static async Task<Frame> ReadFrameAsync(HoldfastClient client, int rows, CancellationToken cancellationToken)
    {
        var generations = client.ListGenerationsAsync(limit: rows, cancellationToken: cancellationToken);
        var bots = client.ListBotsAsync(limit: rows, cancellationToken: cancellationToken);
        await Task.WhenAll(generations, bots);
        return new Frame((await generations).Items, (await bots).Items, TimeProvider.System.GetUtcNow());
    }

    private static IRenderable Render(Frame frame, HoldfastClient client)
    {
        var counts = frame.Generations.GroupBy(g => g.Status).OrderBy(g => g.Key)
            .Select(g => $"{g.Count()} {g.Key.ToString().ToLowerInvariant()}");
        var where = client.SocketPath is { } socket ? "unix:" + socket : client.BaseAddress.ToString();
        var header = new Markup(
            $"[bold]holdfast top[/]  [grey]{Markup.Escape(where)}  {frame.At.ToString("HH:mm:ss", CultureInfo.InvariantCulture)} UTC[/]\n" +
            $"generations: {Markup.Escape(string.Join(", ", counts))}{(frame.Generations.Count == 0 ? "none" : string.Empty)}   " +
            $"bots: {frame.Bots.Count(b => b.Status == BotStatus.Active)} active, {frame.Bots.Count(b => b.Status == BotStatus.Inactive)} inactive   [grey](q to quit)[/]");
        return new Rows(
            header,
            GenerationCommands.GenerationTable(frame.Generations).Title("generations"),
            BotCommands.BotTable(frame.Bots).Title("bots"));
    }

    private static Task WatchForQuitAsync(CancellationTokenSource quit) => Task.Run(
        async () =>
        {
            while (!quit.IsCancellationRequested)
            {
                if (Console.KeyAvailable)
                {
                    var key = Console.ReadKey(intercept: true);
                    if (key.Key is ConsoleKey.Q or ConsoleKey.Escape)
                    {
                        await quit.CancelAsync();
                        return;
                    }
                }
                else
                {
                    await Task.Delay(50, CancellationToken.None);
                }
            }
        },
        CancellationToken.None);
}
