using System.CommandLine;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Holdfast.Bots;
using Holdfast.Cli.Output;
using Holdfast.Hosting;
using Holdfast.Sessions;
using Holdfast.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Holdfast.Cli.Commands;

/// <summary>
/// <c>holdfast export FILE [--store …]</c>, <c>holdfast import FILE [--store …]</c> and <c>holdfast status</c>: moving
/// everything between stores (the embedded SQLite file and PostgreSQL, either way) and seeing what a store holds. The
/// export file is versioned JSON Lines (<see cref="StoreExportFile"/>); ids, owners, sequence numbers and API key
/// hashes are kept, bot login state stays encrypted and the file records a fingerprint of its key.
/// </summary>
internal static class StoreTransferCommands
{
    public static void AddTo(RootCommand root)
    {
        root.Subcommands.Add(Export());
        root.Subcommands.Add(Import());
        root.Subcommands.Add(Status());
        root.Subcommands.Add(Nodes());
    }

    private static Command Export()
    {
        var file = new Argument<string>("FILE") { Description = "Where to write the export (JSON Lines; '-' for stdout)." };
        var force = new Option<bool>("--force") { Description = "Overwrite FILE if it exists." };
        var store = StoreOption.Create();
        var export = new Command("export", "Write every session, log chunk, audit event, key hash and bot row of the store to FILE.") { file, force, store };
        export.SetAction((parseResult, cancellationToken) => RunAsync(async () =>
        {
            var path = parseResult.GetValue(file)!;
            var configuration = StoreOption.Configuration(parseResult.GetValue(store));
            var storage = HoldfastConfiguration.GetStorageOptions(configuration);
            await using var access = await StoreAccess.OpenAsync(migrate: false, parseResult.GetValue(store), cancellationToken);
            var status = await access.Administration.GetSchemaStatusAsync(cancellationToken);
            if (status.Problems.Count > 0)
            {
                throw new StoreSchemaException(string.Join(Environment.NewLine, status.Problems));
            }
            if (status.Pending.Count > 0)
            {
                throw new StoreSchemaException($"The store {access.Administration.Location} has {status.Pending.Count} pending migration(s): run `holdfast migrate` before exporting.");
            }

            var header = new StoreExportHeader(
                StoreExportFile.Format,
                StoreExportFile.Version,
                DateTimeOffset.UtcNow,
                access.Administration.Provider,
                status.Applied.Count == 0 ? 0 : status.Applied.Max(a => a.Version),
                AuthStateKey.Fingerprint(configuration, storage));
            var temporary = path == "-" ? null : path + ".partial";
            if (path != "-" && File.Exists(path) && !parseResult.GetValue(force))
            {
                throw new UsageException($"'{path}' exists; pass --force to overwrite it.");
            }

            var progress = new TransferProgress("export", total: null);
            IReadOnlyDictionary<string, long> counts;
            await using (var output = temporary is null ? Console.OpenStandardOutput() : new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                counts = await StoreExportFile.WriteAsync(output, header, access.Administration.ExportAsync(cancellationToken), progress, cancellationToken);
            }

            progress.Done();
            if (temporary is not null)
            {
                File.Move(temporary, path, overwrite: true);
            }

            Console.Error.WriteLine($"Exported {Describe(counts)} from {access.Administration.Location}{(path == "-" ? string.Empty : " to " + Path.GetFullPath(path))}.");
            return ExitCodes.Ok;
        }));
        return export;
    }

    private static Command Import()
    {
        var file = new Argument<string>("FILE") { Description = "A file written by `holdfast export`." };
        var store = StoreOption.Create();
        var import = new Command("import", "Load FILE into an empty store (migrated first), keeping ids, sequence numbers and key hashes; verifies the counts.") { file, store };
        import.SetAction((parseResult, cancellationToken) => RunAsync(async () =>
        {
            var path = parseResult.GetValue(file)!;
            var (header, expected) = await StoreExportFile.ReadSummaryAsync(path, cancellationToken);
            var configuration = StoreOption.Configuration(parseResult.GetValue(store));
            var storage = HoldfastConfiguration.GetStorageOptions(configuration);
            // Login state (bot_sessions.auth_state) and per-key login state (bot_auth_keys) are both encrypted with that key.
            if (expected.GetValueOrDefault("bot_sessions.auth_state") > 0 || expected.GetValueOrDefault("bot_auth_keys") > 0)
            {
                var target = AuthStateKey.Fingerprint(configuration, storage);
                if (!string.Equals(target, header.AuthStateKeyFingerprint, StringComparison.Ordinal))
                {
                    throw new UsageException(
                        $"The export holds encrypted bot login state (key fingerprint {header.AuthStateKeyFingerprint ?? "none"}) but this store's key is {(target is null ? "not set" : "different (" + target + ")")}: " +
                        $"set {BotOptions.SectionName}:{nameof(BotOptions.AuthStateKey)} (or copy the source's {new BotOptions().AuthStateKeyFile} into the data directory) to the source's key, then import again.");
                }
            }

            await using var access = await StoreAccess.OpenAsync(migrate: true, parseResult.GetValue(store), cancellationToken);
            var total = expected.Where(kv => !kv.Key.Contains('.', StringComparison.Ordinal)).Sum(kv => kv.Value);
            var progress = new TransferProgress("import", total);
            var loaded = await access.Administration.ImportAsync(StoreExportFile.ReadRecordsAsync(path, cancellationToken), progress, cancellationToken);
            progress.Done();
            foreach (var (table, count) in expected.Where(kv => !kv.Key.Contains('.', StringComparison.Ordinal)))
            {
                if (loaded.GetValueOrDefault(table) != count)
                {
                    throw new StoreUnavailableException(string.Create(
                        CultureInfo.InvariantCulture,
                        $"Import verification failed: the file has {count} row(s) of {table} but {loaded.GetValueOrDefault(table)} were loaded."));
                }
            }

            var sessions = (await access.Administration.CountSessionsAsync(cancellationToken)).Sum(c => c.Count);
            var expectedSessions = expected.GetValueOrDefault("generation_sessions") + expected.GetValueOrDefault("bot_sessions");
            if (sessions != expectedSessions)
            {
                throw new StoreUnavailableException(string.Create(
                    CultureInfo.InvariantCulture, $"Import verification failed: the store now counts {sessions} session(s), the file {expectedSessions}."));
            }

            Console.Out.WriteLine($"Imported {Describe(loaded)} into {access.Administration.Location} (verified).");
            return ExitCodes.Ok;
        }));
        return import;
    }

    private static Command Status()
    {
        var json = new Option<bool>("--json") { Description = "Print {\"store\", \"provider\", \"schema\", \"sessions\"} as JSON." };
        var store = StoreOption.Create();
        var status = new Command("status", "The store (password hidden), its schema version and its sessions by status.") { json, store };
        status.SetAction((parseResult, cancellationToken) => RunAsync(async () =>
        {
            await using var access = await StoreAccess.OpenAsync(migrate: false, parseResult.GetValue(store), cancellationToken);
            var administration = access.Administration;
            await administration.PingAsync(cancellationToken);
            var schema = await administration.GetSchemaStatusAsync(cancellationToken);
            var counts = schema.IsCurrent ? await administration.CountSessionsAsync(cancellationToken) : [];
            var version = schema.Applied.Count == 0 ? 0 : schema.Applied.Max(a => a.Version);
            var expected = version + schema.Pending.Count;
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(new
                {
                    store = administration.Location,
                    provider = administration.Provider,
                    schema = new { version, expected = schema.Applied.Count + schema.Pending.Count, pending = schema.Pending.Select(m => m.Id).ToList(), problems = schema.Problems, current = schema.IsCurrent },
                    sessions = new
                    {
                        generation = counts.Where(c => c.Kind == SessionKind.Generation).ToDictionary(c => c.Status, c => c.Count, StringComparer.Ordinal),
                        bot = counts.Where(c => c.Kind == SessionKind.Bot).ToDictionary(c => c.Status, c => c.Count, StringComparer.Ordinal),
                    },
                    nodes = schema.IsCurrent ? NodeRows(await access.Runs.ListNodesAsync(cancellationToken), access.LeaseDuration) : [],
                });
            }
            else
            {
                Console.Out.WriteLine($"store:      {administration.Location} ({administration.Provider})");
                Console.Out.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"schema:     version {version}{(schema.IsCurrent ? " (current)" : schema.Problems.Count > 0 ? " (" + schema.Problems[0] + ")" : $", {schema.Pending.Count} migration(s) pending: run `holdfast migrate`")}"));
                Console.Out.WriteLine($"generation: {Counts(counts, SessionKind.Generation)}");
                Console.Out.WriteLine($"bot:        {Counts(counts, SessionKind.Bot)}");
                if (schema.IsCurrent)
                {
                    var nodes = NodeRows(await access.Runs.ListNodesAsync(cancellationToken), access.LeaseDuration);
                    Console.Out.WriteLine(nodes.Count == 0
                        ? "nodes:      none has run yet"
                        : "nodes:      " + string.Join(", ", nodes.Select(n => string.Create(CultureInfo.InvariantCulture, $"{n.NodeId} ({(n.Alive ? "alive" : n.StoppedAt is null ? "silent" : "stopped")}, {n.SessionsHeld} held, heartbeat {n.HeartbeatAt:u})"))));
                }
            }

            return schema.Problems.Count == 0 ? ExitCodes.Ok : ExitCodes.Usage;
        }));
        return status;
    }

    private static Command Nodes()
    {
        var json = new Option<bool>("--json") { Description = "Print the nodes as a JSON array." };
        var store = StoreOption.Create();
        var nodes = new Command("nodes", "The holdfast serve nodes on the store: id, alive or not, last heartbeat, sessions held.") { json, store };
        nodes.SetAction((parseResult, cancellationToken) => RunAsync(async () =>
        {
            await using var access = await StoreAccess.OpenAsync(migrate: false, parseResult.GetValue(store), cancellationToken);
            var rows = NodeRows(await access.Runs.ListNodesAsync(cancellationToken), access.LeaseDuration);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(rows);
                return ExitCodes.Ok;
            }

            if (rows.Count == 0)
            {
                Console.Out.WriteLine("No node has run on this store yet.");
                return ExitCodes.Ok;
            }

            Console.Out.WriteLine($"{"NODE",-32} {"STATE",-8} {"HELD",5}  {"HEARTBEAT",-20} STARTED");
            foreach (var n in rows)
            {
                Console.Out.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{n.NodeId,-32} {(n.Alive ? "alive" : n.StoppedAt is null ? "silent" : "stopped"),-8} {n.SessionsHeld,5}  {n.HeartbeatAt:u} {n.StartedAt:u}"));
            }

            return ExitCodes.Ok;
        }));
        return nodes;
    }

    /// <summary>The wire shape of the nodes: alive when not stopped and the heartbeat is younger than the lease.</summary>
    internal static List<Holdfast.Client.Models.ClusterNodeInfo> NodeRows(IReadOnlyList<Holdfast.Cluster.ClusterNode> nodes, TimeSpan leaseDuration)
    {
        var now = DateTimeOffset.UtcNow;
        return nodes.Select(n => new Holdfast.Client.Models.ClusterNodeInfo(
            n.NodeId, n.StartedAt, n.HeartbeatAt, n.StoppedAt, n.StoppedAt is null && now - n.HeartbeatAt < leaseDuration, n.SessionsHeld)).ToList();
    }

    private static string Counts(IReadOnlyList<SessionCount> counts, SessionKind kind)
    {
        var of = counts.Where(c => c.Kind == kind).ToList();
        return of.Count == 0
            ? "none"
            : string.Join(", ", of.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Count} {c.Status}")));
    }

    private static string Describe(IReadOnlyDictionary<string, long> counts) =>
        string.Join(", ", counts.Where(kv => !kv.Key.Contains('.', StringComparison.Ordinal)).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Value} {kv.Key}")));

    private static async Task<int> RunAsync(Func<Task<int>> work)
    {
        try
        {
            return await work();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return CliAction.Fail(e, null);
        }
    }

    /// <summary>Rows copied so far on stderr: a live line on a terminal, a line per 10,000 rows otherwise.</summary>
    private sealed class TransferProgress(string label, long? total) : IProgress<StoreProgress>
    {
        private readonly bool _interactive = !Console.IsErrorRedirected;
        private long _lastLine = -1;

        public void Report(StoreProgress value)
        {
            if (_interactive)
            {
                Console.Error.Write("\r" + Line(value.Done, value.Phase));
            }
            else if (value.Done / 10_000 != _lastLine)
            {
                _lastLine = value.Done / 10_000;
                Console.Error.WriteLine(Line(value.Done, value.Phase));
            }
        }

        public void Done()
        {
            if (_interactive && _lastLine != -2)
            {
                Console.Error.WriteLine();
            }

            _lastLine = -2;
        }

        private string Line(long done, string phase) => total is > 0
            ? string.Create(CultureInfo.InvariantCulture, $"{label}: {done * 100 / total.Value,3}% ({done}/{total} rows, {phase})")
            : string.Create(CultureInfo.InvariantCulture, $"{label}: {done} rows ({phase})");
    }
}

/// <summary>The first line of an export file.</summary>
internal sealed record StoreExportHeader(string Format, int Version, DateTimeOffset CreatedAt, string SourceProvider, int SchemaVersion, string? AuthStateKeyFingerprint);

/// <summary>
/// The export file: JSON Lines, streamed. Line 1 is the header (<c>format</c> <c>holdfast-export</c>, <c>version</c>,
/// source, schema version, bot login-state key fingerprint); then one line per row, <c>{"table", "values"}</c>, tables
/// parents first; the last line is <c>{"end": true, "counts": {table: rows}}</c>, so a cut file is recognised. Values:
/// strings and numbers as JSON, timestamps as <c>{"$time": "…Z"}</c>, blobs (still encrypted) as <c>{"$bytes": base64}</c>.
/// </summary>
internal static class StoreExportFile
{
    public const string Format = "holdfast-export";
    public const int Version = 1;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static async Task<IReadOnlyDictionary<string, long>> WriteAsync(
        Stream output, StoreExportHeader header, IAsyncEnumerable<StoreRecord> records, IProgress<StoreProgress>? progress, CancellationToken cancellationToken)
    {
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
        await using var writer = new StreamWriter(output, new UTF8Encoding(false), 1 << 16) { NewLine = "\n" };
        await writer.WriteLineAsync(JsonSerializer.Serialize(header, Json));
        long done = 0;
        await foreach (var record in records.WithCancellation(cancellationToken))
        {
            var values = new JsonObject();
            foreach (var (column, value) in record.Values)
            {
                values[column] = ToJson(Canonical(record.Table, column, value));
                if (column == "auth_state" && value is not null)
                {
                    counts["bot_sessions.auth_state"] = counts.GetValueOrDefault("bot_sessions.auth_state") + 1;
                }
            }

            await writer.WriteLineAsync(new JsonObject { ["table"] = record.Table, ["values"] = values }.ToJsonString());
            counts[record.Table] = counts.GetValueOrDefault(record.Table) + 1;
            if (++done % 1000 == 0)
            {
                progress?.Report(new StoreProgress(done, -1, record.Table));
            }
        }

        var trailer = new JsonObject { ["end"] = true, ["counts"] = new JsonObject(counts.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))) };
        await writer.WriteLineAsync(trailer.ToJsonString());
        return counts;
    }

    /// <summary>The header and the trailer's counts; refuses a file that is not an export of a version this Holdfast reads, or that was cut short.</summary>
    public static async Task<(StoreExportHeader Header, IReadOnlyDictionary<string, long> Counts)> ReadSummaryAsync(string path, CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        var header = ParseHeader(await reader.ReadLineAsync(cancellationToken), path);
        string? last = null;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            last = line;
        }

        var trailer = last is null ? null : JsonNode.Parse(last);
        if (trailer?["end"]?.GetValue<bool>() != true || trailer["counts"] is not JsonObject counts)
        {
            throw new UsageException($"'{path}' ends before its last line: the export was cut short; export again.");
        }

        return (header, counts.ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<long>(), StringComparer.Ordinal));
    }

    /// <summary>The rows of the file, streamed.</summary>
    public static async IAsyncEnumerable<StoreRecord> ReadRecordsAsync(string path, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        ParseHeader(await reader.ReadLineAsync(cancellationToken), path);
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            var node = JsonNode.Parse(line)!.AsObject();
            if (node.ContainsKey("end"))
            {
                yield break;
            }

            var values = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (column, value) in node["values"]!.AsObject())
            {
                values[column] = FromJson(value);
            }

            yield return new StoreRecord(node["table"]!.GetValue<string>(), values);
        }
    }

    private static StoreExportHeader ParseHeader(string? line, string path)
    {
        StoreExportHeader? header = null;
        try
        {
            header = line is null ? null : JsonSerializer.Deserialize<StoreExportHeader>(line, Json);
        }
        catch (JsonException)
        {
        }

        if (header is null || header.Format != Format)
        {
            throw new UsageException($"'{path}' is not a Holdfast export (written by `holdfast export`).");
        }

        if (header.Version != Version)
        {
            throw new UsageException(string.Create(CultureInfo.InvariantCulture, $"'{path}' is a version {header.Version} export; this Holdfast reads version {Version}: use the Holdfast that wrote it, or a newer one."));
        }

        return header;
    }

    /// <summary>JSON documents of these columns are written canonically (compact, keys sorted), whatever the store keeps.</summary>
    private static readonly HashSet<string> JsonColumns = new(["generation_sessions.input", "generation_sessions.parameters", "generation_sessions.metadata"], StringComparer.Ordinal);

    /// <summary>
    /// One representation per value, whichever store it comes from, so two exports of the same data are the same text:
    /// timestamps (columns named <c>…_at</c>; SQLite keeps them as text) become times, JSON documents canonical JSON.
    /// </summary>
    private static object? Canonical(string table, string column, object? value) => value switch
    {
        string s when column.EndsWith("_at", StringComparison.Ordinal) =>
            DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
        string s when JsonColumns.Contains(table + "." + column) => Sorted(JsonNode.Parse(s))?.ToJsonString() ?? "null",
        _ => value,
    };

    private static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, Sorted(kv.Value)))),
        JsonArray a => new JsonArray([.. a.Select(Sorted)]),
        null => null,
        _ => node.DeepClone(),
    };

    private static JsonNode? ToJson(object? value) => value switch
    {
        null => null,
        string s => JsonValue.Create(s),
        long l => JsonValue.Create(l),
        int i => JsonValue.Create((long)i),
        double d => JsonValue.Create(d),
        bool b => JsonValue.Create(b ? 1L : 0L),
        byte[] bytes => new JsonObject { ["$bytes"] = Convert.ToBase64String(bytes) },
        DateTimeOffset time => new JsonObject { ["$time"] = time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture) },
        _ => throw new InvalidOperationException($"An export value of type {value.GetType().Name} cannot be written."),
    };

    private static object? FromJson(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o when o["$bytes"] is { } bytes => Convert.FromBase64String(bytes.GetValue<string>()),
        JsonObject o when o["$time"] is { } time => DateTimeOffset.Parse(time.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonValue v when v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.TryGetValue<double>(out var d) => d,
        _ => throw new UsageException("The export holds a value this Holdfast cannot read."),
    };
}

/// <summary>The fingerprint of the key bot login state is encrypted with, so an import can refuse a store with another key.</summary>
internal static class AuthStateKey
{
    /// <summary>
    /// <c>sha256:</c> and 16 hex digits of a hash of the key (<c>Bots:AuthStateKey</c>, else the key file in the data
    /// directory); null when neither exists. The key itself never leaves the machine.
    /// </summary>
    public static string? Fingerprint(IConfiguration configuration, StorageOptions storage)
    {
        var bots = configuration.GetSection(BotOptions.SectionName).Get<BotOptions>() ?? new BotOptions();
        byte[] key;
        if (!string.IsNullOrWhiteSpace(bots.AuthStateKey))
        {
            key = BotAuthStateProtector.ResolveKey(bots, storage, NullLogger.Instance);
        }
        else
        {
            var file = BotAuthStateProtector.ResolveKeyFilePath(bots, storage);
            if (!File.Exists(file))
            {
                return null;
            }

            key = File.ReadAllBytes(file);
        }

        var hash = SHA256.HashData([.. Encoding.UTF8.GetBytes("holdfast-bot-auth-key:"), .. key]);
        return "sha256:" + Convert.ToHexStringLower(hash.AsSpan(0, 8));
    }
}
