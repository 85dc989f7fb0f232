using System.CommandLine;
using System.Globalization;
using Holdfast.Cli.Output;
using Holdfast.Client.Models;
using Spectre.Console;

namespace Holdfast.Cli.Commands;

/// <summary><c>holdfast webhooks …</c>: signed webhook subscriptions (add, ls, rm) and their delivery log.</summary>
internal static class WebhookCommands
{
    public static void AddTo(RootCommand root)
    {
        var webhooks = new Command("webhooks", "Signed webhooks: events of your sessions posted to a URL (Standard Webhooks headers).");
        ServerConnection.AddTo(webhooks);
        webhooks.Subcommands.Add(Add());
        webhooks.Subcommands.Add(List());
        webhooks.Subcommands.Add(Remove());
        webhooks.Subcommands.Add(Deliveries());
        root.Subcommands.Add(webhooks);
    }

    private static Command Add()
    {
        var url = new Argument<string>("url") { Description = "Where the events are posted (http:// or https://)." };
        var events = new Option<string[]>("--event", "-e")
        {
            Description = "An event type (repeat it): qrcode.updated, connection.updated, message.received, session.ended, generation.started|paused|resumed|completed|cancelled|failed. None: every type.",
            AllowMultipleArgumentsPerToken = true,
        };
        var secret = new Option<string?>("--secret") { Description = "Sign with this whsec_ secret instead of a new one." };
        var json = GenerationCommands.JsonOption();
        var command = new Command("add", "Subscribe to events; prints the whsec_ secret that verifies their signatures (shown this once).") { url, events, secret, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var types = parseResult.GetValue(events) is { Length: > 0 } list
                ? list.SelectMany(e => e.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList()
                : null;
            var created = await client.CreateWebhookAsync(parseResult.GetValue(url)!, types, parseResult.GetValue(secret), cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(created);
            }
            else
            {
                Console.Out.WriteLine($"{created.Id} {created.Secret}");
                Terminal.Note($"[grey]Events {Markup.Escape(string.Join(", ", created.EventTypes))} go to {Markup.Escape(created.Url)}. The secret is shown only now; see deliveries with: holdfast webhooks deliveries {created.Id}[/]");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command List()
    {
        var json = GenerationCommands.JsonOption();
        var command = new Command("ls", "List your webhook subscriptions (never their secrets).") { json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var all = await client.ListWebhooksAsync(cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(new ItemPage<Webhook>(all, null));
                return ExitCodes.Ok;
            }

            if (all.Count == 0)
            {
                Terminal.Note("[grey]No webhooks. Add one with: holdfast webhooks add https://example.com/hook[/]");
                return ExitCodes.Ok;
            }

            var table = new Table().Border(TableBorder.Simple);
            table.AddColumns("ID", "OWNER", "URL", "EVENTS", "CREATED");
            foreach (var hook in all)
            {
                table.AddRow(
                    Markup.Escape(hook.Id),
                    Markup.Escape(hook.Owner),
                    Markup.Escape(hook.Url),
                    Markup.Escape(string.Join(", ", hook.EventTypes)),
                    hook.CreatedAt.ToString("u", CultureInfo.InvariantCulture));
            }

            Terminal.Out.Write(table);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Remove()
    {
        var id = new Argument<string>("id") { Description = "The subscription id (wh_…, from webhooks ls)." };
        var command = new Command("rm", "Delete a webhook subscription and its pending deliveries.") { id };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            await client.DeleteWebhookAsync(parseResult.GetValue(id)!, cancellationToken);
            Console.Out.WriteLine($"{parseResult.GetValue(id)} deleted");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Deliveries()
    {
        var id = new Argument<string>("id") { Description = "The subscription id (wh_…)." };
        var limit = new Option<int>("--limit", "-n") { Description = "How many to show (newest first).", DefaultValueFactory = _ => 50 };
        var json = GenerationCommands.JsonOption();
        var command = new Command("deliveries", "The delivery log: each event's webhook-id, status, attempts and the last answer.") { id, limit, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var items = await GenerationCommands.ReadAllAsync(
                (cursor, ct) => client.ListWebhookDeliveriesAsync(parseResult.GetValue(id)!, cursor, Math.Min(parseResult.GetValue(limit), 1000), ct),
                parseResult.GetValue(limit),
                cancellationToken);
            WriteDeliveries(items, parseResult.GetValue(json));
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Prints deliveries as <c>{"items": […]}</c> or as a table (webhook-id, event, session, status, attempts, last answer).</summary>
    internal static void WriteDeliveries(IReadOnlyList<WebhookDeliveryInfo> items, bool json)
    {
        if (json)
        {
            Terminal.WriteJson(new { items });
            return;
        }

        if (items.Count == 0)
        {
            Terminal.Note("[grey]No deliveries yet.[/]");
            return;
        }

        var table = new Table().Border(TableBorder.Simple);
        table.AddColumns("WEBHOOK-ID", "EVENT", "SESSION", "STATUS", "ATTEMPTS", "LAST", "CREATED");
        foreach (var d in items)
        {
            table.AddRow(
                Markup.Escape(d.Id),
                Markup.Escape(d.EventType),
                Markup.Escape($"{d.SessionKind}:{d.SessionId}"),
                d.Status,
                d.Attempts.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(d.LastStatus is { } s ? $"HTTP {s.ToString(CultureInfo.InvariantCulture)}" : d.LastError ?? string.Empty),
                d.CreatedAt.ToString("u", CultureInfo.InvariantCulture));
        }

        Terminal.Out.Write(table);
    }
}
