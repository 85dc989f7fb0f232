using System.CommandLine;
using System.Globalization;
using System.Text;
using Holdfast.Client;
using Holdfast.Client.Models;
using Holdfast.Bots;
using Holdfast.Cli.Output;
using Spectre.Console;

namespace Holdfast.Cli.Commands;

/// <summary><c>holdfast bot …</c>: start, list, show, QR code, end and audit bot sessions.</summary>
internal static class BotCommands
{
    public static void AddTo(RootCommand root)
    {
        var bot = new Command("bot", "Bot sessions: chat bots whose login, QR code and status survive restarts.");
        ServerConnection.AddTo(bot);
        bot.Subcommands.Add(Start());
        bot.Subcommands.Add(List());
        bot.Subcommands.Add(Show());
        bot.Subcommands.Add(Qr());
        bot.Subcommands.Add(End());
        bot.Subcommands.Add(Events());
        bot.Subcommands.Add(Deliveries());
        bot.Subcommands.Add(Assign());
        root.Subcommands.Add(bot);
    }

    private static Argument<string> IdArgument() => new("id") { Description = "The bot session id (letters, digits and - _ . : @)." };

    private static Command Start()
    {
        var id = IdArgument();
        var type = new Option<string?>("--type", "-t") { Description = "Bot type: web (default; pair a browser by scanning the QR) or bridge (a bot runtime reports over HTTP)." };
        type.AcceptOnlyFromAmong("web", "bridge");
        var json = GenerationCommands.JsonOption();
        var command = new Command("start", "Start a bot session, or reactivate the stored one (no new scan needed).") { id, type, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var bot = await client.StartBotAsync(parseResult.GetValue(id)!, parseResult.GetValue(type), cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(bot);
            }
            else
            {
                Console.Out.WriteLine($"{bot.SessionId} {bot.Status.ToString().ToLowerInvariant()}");
                Terminal.Note($"[grey]Show its QR code with: holdfast bot qr {Markup.Escape(bot.SessionId)}[/]");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command List()
    {
        var status = new Option<BotStatus?>("--status", "-s") { Description = "Only active or inactive sessions." };
        var limit = new Option<int>("--limit", "-n") { Description = "How many to show.", DefaultValueFactory = _ => 50 };
        var json = GenerationCommands.JsonOption();
        var command = new Command("ls", "List bot sessions.") { status, limit, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var items = await GenerationCommands.ReadAllAsync(
                (cursor, ct) => client.ListBotsAsync(parseResult.GetValue(status), Math.Min(parseResult.GetValue(limit), 200), cursor, ct),
                parseResult.GetValue(limit),
                cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(new { items });
                return ExitCodes.Ok;
            }

            if (items.Count == 0)
            {
                Terminal.Note("[grey]No bot sessions.[/]");
                return ExitCodes.Ok;
            }

            Terminal.Out.Write(BotTable(items));
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static Table BotTable(IEnumerable<Bot> items)
    {
        var table = new Table().Border(TableBorder.Simple);
        table.AddColumns("ID", "STATUS", "TYPE", "OWNER", "QR", "CONNECTION", "LAST MESSAGE", "UPDATED");
        foreach (var b in items)
        {
            table.AddRow(
                Markup.Escape(b.SessionId),
                b.Status == BotStatus.Active ? "[green]active[/]" : "[grey]inactive[/]",
                Markup.Escape(b.BotType ?? string.Empty),
                Markup.Escape(b.Owner ?? string.Empty),
                b.QrData is null ? string.Empty : "yes",
                Markup.Escape(GenerationCommands.Preview(b.ConnectionDetail, 30)),
                Markup.Escape(GenerationCommands.Preview(b.LastMessage, 40)),
                Markup.Escape(GenerationCommands.Ago(b.UpdatedAt)));
        }

        return table;
    }

    private static Command Show()
    {
        var id = IdArgument();
        var json = GenerationCommands.JsonOption();
        var command = new Command("show", "Show one bot session.") { id, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var bot = await client.GetBotAsync(parseResult.GetValue(id)!, cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(bot);
                return ExitCodes.Ok;
            }

            var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
            void Row(string name, string? value)
            {
                if (!string.IsNullOrEmpty(value))
                {
                    grid.AddRow(new Markup($"[grey]{name}[/]"), new Text(value));
                }
            }

            Row("id", bot.SessionId);
            Row("status", bot.Status.ToString().ToLowerInvariant());
            Row("type", bot.BotType);
            Row("owner", bot.Owner);
            Row("connection", bot.ConnectionDetail);
            Row("last message", bot.LastMessage);
            Row("qr", bot.QrData is null ? "none" : "waiting for a scan (holdfast bot qr " + bot.SessionId + ")");
            Row("holder", bot.Holder is { } h ? string.Create(CultureInfo.InvariantCulture, $"{h.NodeId} (epoch {h.Epoch}, lease until {h.LeaseExpiresAt:u})") : "none");
            Row("version", bot.Version.ToString(CultureInfo.InvariantCulture));
            Row("created", bot.CreatedAt.ToString("u", CultureInfo.InvariantCulture));
            Row("updated", bot.UpdatedAt.ToString("u", CultureInfo.InvariantCulture));
            Terminal.Out.Write(grid);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Qr()
    {
        var id = IdArgument();
        var format = new Option<string>("--format", "-f") { Description = "terminal (default: draw it here), text (the server's text rendering), png or svg.", DefaultValueFactory = _ => "terminal" };
        format.AcceptOnlyFromAmong("terminal", "text", "png", "svg");
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write the QR code to this file instead of stdout (png and svg)." };
        var wait = new Option<double>("--wait") { Description = "Seconds to wait for the bot to report a QR code.", DefaultValueFactory = _ => 10 };
        var invert = new Option<bool>("--invert") { Description = "With NO_COLOR set: swap dark and light for a terminal with light text on a dark background." };
        var json = GenerationCommands.JsonOption();
        var command = new Command("qr", "Draw the bot's current QR code in the terminal (or save it as PNG/SVG).") { id, format, output, wait, invert, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var sessionId = parseResult.GetValue(id)!;
            var chosen = parseResult.GetValue(format)!;
            var asJson = parseResult.GetValue(json);
            var bot = await Terminal.WithSpinnerAsync(
                $"Waiting for {sessionId} to show a QR code…",
                asJson,
                () => WaitForQrAsync(client, sessionId, TimeSpan.FromSeconds(Math.Max(0, parseResult.GetValue(wait))), cancellationToken));
            if (bot.QrData is null)
            {
                throw new HoldfastApiException(
                    System.Net.HttpStatusCode.NotFound,
                    "No QR code",
                    bot.Status == BotStatus.Inactive
                        ? $"Bot session '{sessionId}' has ended; start it again with: holdfast bot start {sessionId}"
                        : $"Bot session '{sessionId}' has no QR code (it is logged in, or its connector has not reported one yet).");
            }

            if (asJson)
            {
                Terminal.WriteJson(new { session_id = bot.SessionId, qr_data = bot.QrData });
                return ExitCodes.Ok;
            }

            byte[] content = chosen switch
            {
                // Explicit colours (dark modules on a white field) decode on light and dark terminals alike;
                // NO_COLOR asks for none: then the plain drawing, swapped with --invert for a dark terminal.
                "terminal" => Encoding.UTF8.GetBytes(
                    string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR")) ? BotQrCodes.RenderAnsi(bot.QrData)
                    : parseResult.GetValue(invert) ? BotQrCodes.RenderText(bot.QrData, invert: true)
                    : BotQrCodes.RenderText(bot.QrData)),
                "text" => await client.GetBotQrAsync(sessionId, BotQrFormat.Text, cancellationToken),
                "png" => await client.GetBotQrAsync(sessionId, BotQrFormat.Png, cancellationToken),
                _ => await client.GetBotQrAsync(sessionId, BotQrFormat.Svg, cancellationToken),
            };
            if (parseResult.GetValue(output) is { } file)
            {
                await File.WriteAllBytesAsync(file.FullName, content, cancellationToken);
                Terminal.Note($"[grey]Wrote {Markup.Escape(file.FullName)}[/]");
                return ExitCodes.Ok;
            }

            if (chosen == "png" && !Console.IsOutputRedirected)
            {
                throw new UsageException("A PNG does not belong on a terminal: add --output FILE, or redirect stdout.");
            }

            await using var stdout = Console.OpenStandardOutput();
            await stdout.WriteAsync(content, cancellationToken);
            if (chosen == "terminal")
            {
                Terminal.Note($"[grey]Scan it to link the bot; it may change — run again for the current one. Data: {Markup.Escape(bot.QrData)}[/]");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static async Task<Bot> WaitForQrAsync(HoldfastClient client, string sessionId, TimeSpan wait, CancellationToken cancellationToken)
    {
        var deadline = TimeProvider.System.GetTimestamp();
        while (true)
        {
            var bot = await client.GetBotAsync(sessionId, cancellationToken);
            if (bot.QrData is not null || bot.Status == BotStatus.Inactive || TimeProvider.System.GetElapsedTime(deadline) >= wait)
            {
                return bot;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), TimeProvider.System, cancellationToken);
        }
    }

    private static Command End()
    {
        var id = IdArgument();
        var json = GenerationCommands.JsonOption();
        var command = new Command("end", "End a bot session: it becomes inactive and its QR code is cleared.") { id, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var bot = await client.EndBotAsync(parseResult.GetValue(id)!, cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(bot);
            }
            else
            {
                Console.Out.WriteLine($"{bot.SessionId} {bot.Status.ToString().ToLowerInvariant()}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Assign()
    {
        var id = IdArgument();
        var owner = new Option<string>("--owner") { Description = "The user who owns the bot session from now on.", Required = true };
        var json = GenerationCommands.JsonOption();
        var command = new Command("assign", "Admins: give a bot session to a user (e.g. one created without an owner); audited.") { id, owner, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var bot = await client.AssignBotOwnerAsync(parseResult.GetValue(id)!, parseResult.GetValue(owner)!, cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(bot);
            }
            else
            {
                Console.Out.WriteLine($"{bot.SessionId} owner {bot.Owner}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Events()
    {
        var id = IdArgument();
        var limit = new Option<int>("--limit", "-n") { Description = "How many events to show (newest first).", DefaultValueFactory = _ => 50 };
        var json = GenerationCommands.JsonOption();
        var command = new Command("events", "Show a bot's audit trail.") { id, limit, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var page = await client.GetBotEventsAsync(parseResult.GetValue(id)!, limit: parseResult.GetValue(limit), cancellationToken: cancellationToken);
            GenerationCommands.WriteAudit(page, parseResult.GetValue(json));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Deliveries()
    {
        var id = IdArgument();
        var limit = new Option<int>("--limit", "-n") { Description = "How many to show (newest first, at most 200).", DefaultValueFactory = _ => 20 };
        var json = GenerationCommands.JsonOption();
        var command = new Command("deliveries", "The newest webhook deliveries about this bot, across its owner's subscriptions.") { id, limit, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var items = await client.GetBotWebhookDeliveriesAsync(parseResult.GetValue(id)!, Math.Clamp(parseResult.GetValue(limit), 1, 200), cancellationToken);
            WebhookCommands.WriteDeliveries(items, parseResult.GetValue(json));
            return ExitCodes.Ok;
        });
        return command;
    }
}
