using System.CommandLine;
using System.Globalization;
using Holdfast.Client;
using Holdfast.Client.Models;
using Holdfast.Client.Streaming;
using Holdfast.Cli.Output;
using Spectre.Console;

namespace Holdfast.Cli.Commands;

// The client DTO, not the core's Holdfast.Generation namespace (which wins name lookup inside Holdfast.*).
using Generation = Holdfast.Client.Models.Generation;

/// <summary><c>holdfast gen …</c>: start, list, show, control, fork, attach to and audit generation sessions.</summary>
internal static class GenerationCommands
{
    public static void AddTo(RootCommand root)
    {
        var gen = new Command("gen", "Generation sessions: an LLM producing text that survives pauses and restarts.");
        ServerConnection.AddTo(gen);
        gen.Subcommands.Add(Start());
        gen.Subcommands.Add(List());
        gen.Subcommands.Add(Show());
        foreach (var action in new[] { "pause", "resume", "cancel" })
        {
            gen.Subcommands.Add(Control(action));
        }

        gen.Subcommands.Add(Fork());
        gen.Subcommands.Add(Attach());
        gen.Subcommands.Add(Events());
        gen.Subcommands.Add(Delete());
        root.Subcommands.Add(gen);
    }

    internal static Option<bool> JsonOption() => new("--json") { Description = "Print the result as JSON (snake_case, like the HTTP API)." };

    private static Argument<string> IdArgument() => new("id") { Description = "The generation session id." };

    private static Command Start()
    {
        var prompt = new Argument<string?>("prompt") { Description = "The user message ('-' reads it from stdin).", Arity = ArgumentArity.ZeroOrOne };
        var model = new Option<string>("--model", "-m") { Description = "Model name (e.g. 'scripted', or a model of the configured backend).", Required = true };
        var backend = new Option<string?>("--backend", "-b") { Description = "Backend name configured on the server (default: the server's choice for the model)." };
        var system = new Option<string?>("--system") { Description = "A system message put before the prompt." };
        var temperature = new Option<double?>("--temperature") { Description = "Sampling temperature." };
        var topP = new Option<double?>("--top-p") { Description = "Nucleus sampling probability." };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "Upper bound of output tokens." };
        var seed = new Option<long?>("--seed") { Description = "Sampling seed (deterministic backends repeat their output)." };
        var stop = new Option<string[]>("--stop") { Description = "Stop sequence (repeatable).", AllowMultipleArgumentsPerToken = false };
        var previous = new Option<string?>("--previous") { Description = "Continue the conversation of this earlier session." };
        var metadata = new Option<string[]>("--meta") { Description = "Metadata key=value (repeatable)." };
        var idempotencyKey = new Option<string?>("--idempotency-key") { Description = "Retrying with the same key returns the same session instead of a new one." };
        var attach = new Option<bool>("--attach", "-a") { Description = "Stay and print the text as it streams (like `gen attach`)." };
        var wait = new Option<bool>("--wait", "-w") { Description = "Wait until the generation ends (a progress bar on a terminal), then print its output (with --json: the finished session)." };
        var json = JsonOption();
        var command = new Command("start", "Start a generation; prints its id (or streams its text with --attach).")
        {
            prompt, model, backend, system, temperature, topP, maxTokens, seed, stop, previous, metadata, idempotencyKey, attach, wait, json,
        };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var text = parseResult.GetValue(prompt);
            if (text == "-")
            {
                text = await Console.In.ReadToEndAsync(cancellationToken);
            }

            if (string.IsNullOrWhiteSpace(text))
            {
                throw new UsageException("Give the prompt as an argument, or '-' to read it from stdin.");
            }

            var input = new List<InputMessage>();
            if (parseResult.GetValue(system) is { } systemText)
            {
                input.Add(new InputMessage("system", systemText));
            }

            input.Add(new InputMessage("user", text));
            var stops = parseResult.GetValue(stop);
            var parameters = new GenerationParameters(
                parseResult.GetValue(temperature),
                parseResult.GetValue(topP),
                parseResult.GetValue(maxTokens),
                parseResult.GetValue(seed),
                stops is { Length: > 0 } ? stops : null);
            var request = new CreateGenerationRequest(
                parseResult.GetValue(model),
                input,
                parseResult.GetValue(backend),
                parameters == new GenerationParameters() ? null : parameters,
                parseResult.GetValue(previous),
                ParseMetadata(parseResult.GetValue(metadata)));
            var generation = await client.CreateGenerationAsync(request, parseResult.GetValue(idempotencyKey), cancellationToken);
            if (parseResult.GetValue(attach))
            {
                Terminal.Note($"[grey]generation {Markup.Escape(generation.Id)} started[/]");
                return await FollowAsync(client, generation.Id, 0, parseResult.GetValue(json), cancellationToken);
            }

            if (parseResult.GetValue(wait))
            {
                return await WaitForEndAsync(client, generation, parseResult.GetValue(json), cancellationToken);
            }

            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(generation);
            }
            else
            {
                Console.Out.WriteLine(generation.Id);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Follows the generation to its end under a progress bar (chunks against max_tokens), then prints the result.</summary>
    private static async Task<int> WaitForEndAsync(HoldfastClient client, Generation generation, bool json, CancellationToken cancellationToken)
    {
        var done = await Terminal.WithProgressAsync(
            $"Generating {generation.Id}",
            generation.Parameters?.MaxTokens,
            json,
            async report =>
            {
                var chunks = 0;
                await foreach (var e in client.FollowAsync(generation.Id, 0, null, cancellationToken))
                {
                    if (e is GenerationChunkEvent)
                    {
                        report(++chunks);
                    }
                    else if (e is GenerationDoneEvent end)
                    {
                        return end;
                    }
                }

                return null;
            });
        var finished = await client.GetGenerationAsync(generation.Id, cancellationToken);
        if (json)
        {
            Terminal.WriteJson(finished);
        }
        else
        {
            Console.Out.WriteLine(finished.Output ?? string.Empty);
            Terminal.Note($"[grey]{Markup.Escape(finished.Id)} {finished.Status.ToString().ToLowerInvariant()}[/]");
        }

        var failed = (done?.Status ?? finished.Status) == GenerationStatus.Failed;
        if (failed)
        {
            // Why it failed, always (also with --json and when stderr is not a terminal): the reason is the point.
            Console.Error.WriteLine($"holdfast: generation {finished.Id} failed: {finished.Error ?? "no reason was recorded"}");
        }

        return failed ? ExitCodes.Error : ExitCodes.Ok;
    }

    private static Command List()
    {
        var status = new Option<GenerationStatus?>("--status", "-s") { Description = "Only sessions in this status (queued, running, paused, completed, cancelled, failed)." };
        var limit = new Option<int>("--limit", "-n") { Description = "How many to show.", DefaultValueFactory = _ => 50 };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print only the ids, one per line (e.g. id=$(holdfast gen ls -n 1 -q) for the newest)." };
        var json = JsonOption();
        var command = new Command("ls", "List generation sessions, newest first.") { status, limit, quiet, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var items = await ReadAllAsync(
                (cursor, ct) => client.ListGenerationsAsync(parseResult.GetValue(status), Math.Min(parseResult.GetValue(limit), 200), cursor, ct),
                parseResult.GetValue(limit),
                cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(new { items });
                return ExitCodes.Ok;
            }

            if (parseResult.GetValue(quiet))
            {
                foreach (var item in items)
                {
                    Console.Out.WriteLine(item.Id);
                }

                return ExitCodes.Ok;
            }

            if (items.Count == 0)
            {
                Terminal.Note("[grey]No generation sessions.[/]");
                return ExitCodes.Ok;
            }

            Terminal.Out.Write(GenerationTable(items));
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static Table GenerationTable(IEnumerable<Generation> items)
    {
        var table = new Table().Border(TableBorder.Simple);
        table.AddColumns("ID", "STATUS", "MODEL", "OWNER", "TOKENS", "UPDATED", "OUTPUT");
        foreach (var g in items)
        {
            table.AddRow(
                Markup.Escape(g.Id),
                StatusMarkup(g.Status, g.PauseReason),
                Markup.Escape(g.Model),
                Markup.Escape(g.Owner),
                (g.Usage?.OutputTokens ?? 0).ToString(CultureInfo.InvariantCulture),
                Markup.Escape(Ago(g.UpdatedAt)),
                Markup.Escape(Preview(g.Output, 40)));
        }

        return table;
    }

    private static Command Show()
    {
        var id = IdArgument();
        var json = JsonOption();
        var command = new Command("show", "Show one generation session with its output so far.") { id, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var generation = await client.GetGenerationAsync(parseResult.GetValue(id)!, cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(generation);
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

            grid.AddRow(new Markup("[grey]id[/]"), new Text(generation.Id));
            grid.AddRow(new Markup("[grey]status[/]"), new Markup(StatusMarkup(generation.Status, generation.PauseReason)));
            Row("model", $"{generation.Model} ({generation.Backend})");
            Row("owner", generation.Owner);
            Row("holder", generation.Holder is { } h ? string.Create(CultureInfo.InvariantCulture, $"{h.NodeId} (epoch {h.Epoch}, lease until {h.LeaseExpiresAt:u})") : null);
            Row("error", generation.Error);
            Row("finish reason", generation.FinishReason);
            Row("tokens", generation.Usage is { } u ? $"{u.InputTokens} in, {u.OutputTokens} out" : null);
            Row("last seq", generation.LastSeq.ToString(CultureInfo.InvariantCulture));
            Row("version", generation.Version.ToString(CultureInfo.InvariantCulture));
            Row("previous", generation.PreviousSessionId);
            Row("forked from", generation.ForkedFrom is null ? null : $"{generation.ForkedFrom} at seq {generation.ForkedAtSeq}");
            Row("created", generation.CreatedAt.ToString("u", CultureInfo.InvariantCulture));
            Row("updated", generation.UpdatedAt.ToString("u", CultureInfo.InvariantCulture));
            Row("completed", generation.CompletedAt?.ToString("u", CultureInfo.InvariantCulture));
            foreach (var (key, value) in generation.Metadata ?? new Dictionary<string, string>(StringComparer.Ordinal))
            {
                Row($"meta {key}", value);
            }

            foreach (var message in generation.Input)
            {
                Row(message.Role, Preview(message.Content, 200));
            }

            Terminal.Out.Write(grid);
            Terminal.Out.WriteLine();
            Console.Out.WriteLine(generation.Output ?? string.Empty);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Control(string action)
    {
        var id = IdArgument();
        var reason = new Option<string?>("--reason") { Description = "Why, recorded in the audit trail." };
        var wait = new Option<double>("--wait") { Description = "Seconds to wait for the session to reach the state (0: return once recorded).", DefaultValueFactory = _ => 10 };
        var json = JsonOption();
        var description = action switch
        {
            "pause" => "Pause a generation; it keeps its output and continues from there on resume.",
            "resume" => "Resume a paused (or failed) generation where it stopped.",
            _ => "Cancel a generation for good, keeping its partial output.",
        };
        var command = new Command(action, description) { id, reason, wait, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var sessionId = parseResult.GetValue(id)!;
            var seconds = parseResult.GetValue(wait);
            if (seconds < 0)
            {
                throw new UsageException("--wait must be 0 or more seconds.");
            }

            TimeSpan? waitFor = seconds > 0 ? TimeSpan.FromSeconds(seconds) : null;
            var asJson = parseResult.GetValue(json);
            var verb = action switch { "pause" => "pausing", "resume" => "resuming", _ => "cancelling" };
            var generation = await Terminal.WithSpinnerAsync(
                $"{char.ToUpperInvariant(verb[0])}{verb[1..]} {sessionId}…",
                asJson,
                () => action switch
                {
                    "pause" => client.PauseGenerationAsync(sessionId, parseResult.GetValue(reason), waitFor, cancellationToken: cancellationToken),
                    "resume" => client.ResumeGenerationAsync(sessionId, parseResult.GetValue(reason), waitFor, cancellationToken: cancellationToken),
                    _ => client.CancelGenerationAsync(sessionId, parseResult.GetValue(reason), waitFor, cancellationToken: cancellationToken),
                });
            if (asJson)
            {
                Terminal.WriteJson(generation);
            }
            else
            {
                var desired = string.IsNullOrEmpty(generation.DesiredState) || string.Equals(generation.DesiredState, generation.Status.ToString(), StringComparison.OrdinalIgnoreCase)
                    ? string.Empty
                    : $" (requested: {generation.DesiredState})";
                Console.Out.WriteLine($"{generation.Id} {generation.Status.ToString().ToLowerInvariant()}{desired}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Fork()
    {
        var id = IdArgument();
        var atSeq = new Option<long?>("--at-seq") { Description = "Keep the output up to this seq (default: all of it)." };
        var json = JsonOption();
        var command = new Command("fork", "Fork a generation into a new session that continues on its own; prints the new id.") { id, atSeq, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var fork = await client.ForkGenerationAsync(parseResult.GetValue(id)!, parseResult.GetValue(atSeq), cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(fork);
            }
            else
            {
                Console.Out.WriteLine(fork.Id);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Attach()
    {
        var id = IdArgument();
        var after = new Option<long>("--after") { Description = "Start after this seq (default: from the beginning)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per event (chunk, status, done) instead of the text." };
        var command = new Command("attach", "Print a generation's text as it streams, until it ends; survives server restarts.") { id, after, json };
        command.SetClientAction((parseResult, client, cancellationToken) =>
            FollowAsync(client, parseResult.GetValue(id)!, parseResult.GetValue(after), parseResult.GetValue(json), cancellationToken));
        return command;
    }

    /// <summary>Streams a generation to stdout; exit code 0 when it completed or was cancelled, 1 when it failed.</summary>
    internal static async Task<int> FollowAsync(HoldfastClient client, string id, long after, bool json, CancellationToken cancellationToken)
    {
        var options = new FollowOptions
        {
            GiveUpAfter = TimeSpan.FromMinutes(5),
            OnReconnecting = (attempt, error) =>
            {
                if (attempt == 1 || attempt % 10 == 0)
                {
                    Terminal.Note($"[yellow]connection lost ({Markup.Escape(error?.Message ?? "stream ended")}); reconnecting…[/]");
                }
            },
        };
        var endsWithNewline = true;
        await foreach (var e in client.FollowAsync(id, after, options, cancellationToken))
        {
            if (json)
            {
                Terminal.WriteJsonLine<object>(e switch
                {
                    GenerationChunkEvent c => new { type = "chunk", seq = c.Seq, text = c.Text },
                    GenerationStatusEvent s => new { type = "status", seq = s.Seq, status = s.Status, reason = s.Reason, error = s.Error },
                    GenerationDoneEvent d => new { type = "done", seq = d.Seq, status = d.Status },
                    _ => new { type = "unknown", seq = e.Seq },
                });
            }

            switch (e)
            {
                case GenerationChunkEvent chunk when !json:
                    Console.Out.Write(chunk.Text);
                    Console.Out.Flush();
                    if (chunk.Text.Length > 0)
                    {
                        endsWithNewline = chunk.Text[^1] == '\n';
                    }

                    break;
                case GenerationStatusEvent status when !json:
                    if (!endsWithNewline && Terminal.IsInteractive)
                    {
                        Console.Out.WriteLine();
                        endsWithNewline = true;
                    }

                    Terminal.Note($"[grey][[{status.Status.ToString().ToLowerInvariant()}{(status.Reason is null ? string.Empty : ": " + Markup.Escape(status.Reason))}]][/]");
                    if (status.Error is not null)
                    {
                        Terminal.Note($"[red]{Markup.Escape(status.Error)}[/]");
                    }

                    break;
                case GenerationDoneEvent done:
                    if (!json)
                    {
                        if (!endsWithNewline)
                        {
                            Console.Out.WriteLine();
                        }

                        Terminal.Note($"[grey][[{done.Status.ToString().ToLowerInvariant()}]][/]");
                    }

                    return done.Status == GenerationStatus.Failed ? ExitCodes.Error : ExitCodes.Ok;
            }
        }

        return ExitCodes.Ok;
    }

    private static Command Events()
    {
        var id = IdArgument();
        var limit = new Option<int>("--limit", "-n") { Description = "How many events to show (newest first).", DefaultValueFactory = _ => 50 };
        var json = JsonOption();
        var command = new Command("events", "Show a generation's audit trail: who changed what, when and why.") { id, limit, json };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var page = await client.GetGenerationEventsAsync(parseResult.GetValue(id)!, limit: parseResult.GetValue(limit), cancellationToken: cancellationToken);
            WriteAudit(page, parseResult.GetValue(json));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Delete()
    {
        var id = IdArgument();
        var command = new Command("rm", "Delete a generation session and its output (the audit trail keeps its history).") { id };
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            await client.DeleteGenerationAsync(parseResult.GetValue(id)!, cancellationToken);
            Console.Out.WriteLine($"{parseResult.GetValue(id)} deleted");
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static void WriteAudit(AuditPage page, bool json)
    {
        if (json)
        {
            Terminal.WriteJson(page);
            return;
        }

        var table = new Table().Border(TableBorder.Simple);
        table.AddColumns("SEQ", "AT", "ACTOR", "ACTION", "FROM", "TO", "DETAIL");
        foreach (var e in page.Items)
        {
            table.AddRow(
                e.Seq.ToString(CultureInfo.InvariantCulture),
                e.At.ToString("u", CultureInfo.InvariantCulture),
                Markup.Escape(e.Actor),
                Markup.Escape(e.Action),
                Markup.Escape(e.FromState ?? string.Empty),
                Markup.Escape(e.ToState ?? string.Empty),
                Markup.Escape(Preview(e.Detail, 60)));
        }

        Terminal.Out.Write(table);
    }

    internal static async Task<List<T>> ReadAllAsync<T>(Func<string?, CancellationToken, Task<ItemPage<T>>> page, int limit, CancellationToken cancellationToken)
    {
        if (limit <= 0)
        {
            throw new UsageException("--limit must be at least 1.");
        }

        var items = new List<T>();
        string? cursor = null;
        do
        {
            var current = await page(cursor, cancellationToken);
            items.AddRange(current.Items);
            cursor = current.NextCursor;
        }
        while (cursor is not null && items.Count < limit);

        return items.Count > limit ? items[..limit] : items;
    }

    internal static string StatusMarkup(GenerationStatus status, string? reason = null)
    {
        var name = status.ToString().ToLowerInvariant();
        var colour = status switch
        {
            GenerationStatus.Running => "green",
            GenerationStatus.Paused => "yellow",
            GenerationStatus.Completed => "blue",
            GenerationStatus.Failed => "red",
            GenerationStatus.Cancelled => "grey",
            _ => "white",
        };
        var suffix = status == GenerationStatus.Paused && !string.IsNullOrEmpty(reason) ? $" ({Markup.Escape(reason)})" : string.Empty;
        return $"[{colour}]{name}{suffix}[/]";
    }

    internal static string Preview(string? text, int length)
    {
        if (string.IsNullOrEmpty(text))
        {
            return string.Empty;
        }

        var flat = text.ReplaceLineEndings(" ");
        return flat.Length <= length ? flat : string.Concat(flat.AsSpan(0, length - 1), "…");
    }

    internal static string Ago(DateTimeOffset at)
    {
        var elapsed = TimeProvider.System.GetUtcNow() - at;
        return elapsed.TotalSeconds < 60 ? $"{Math.Max(0, (int)elapsed.TotalSeconds)}s ago"
            : elapsed.TotalMinutes < 60 ? $"{(int)elapsed.TotalMinutes}m ago"
            : elapsed.TotalHours < 48 ? $"{(int)elapsed.TotalHours}h ago"
            : at.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
    }

    private static Dictionary<string, string>? ParseMetadata(string[]? pairs)
    {
        if (pairs is not { Length: > 0 })
        {
            return null;
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new UsageException($"--meta takes key=value, not '{pair}'.");
            }

            metadata[pair[..equals]] = pair[(equals + 1)..];
        }

        return metadata;
    }
}
