using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Cli.Tests;

/// <summary>
/// The PostgreSQL store through the real <c>holdfast</c> command and server (needs <c>HOLDFAST_TEST_POSTGRES</c>, see
/// <see cref="TestPostgres"/>; each test makes its own database): moving from SQLite to PostgreSQL, <c>status</c>,
/// bad store settings, a database that is down at start, and a crash mid-generation with exact continuation.
/// </summary>
public sealed class PostgresStoreTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Prompt = "Tell me about harbours and the ropes that hold the boats.";

    /// <summary>One bot login-state key for every store of a test (an import refuses a store with another key).</summary>
    private static readonly string AuthStateKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    [Fact(Timeout = 300_000)]
    public async Task ExportSqliteImportPostgresExportAgain_SameContentBothWays_AndAPausedSessionResumesWithTheExactText()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        using var files = new TempDirectory();
        string referenceOutput;
        string pausedId;
        string keyId;
        string key;
        SortedDictionary<string, long> sourceRows;
        // Slow enough (150 tokens at 5 a second: 30 s) that the pause lands mid-way on a busy machine, where starting
        // the CLI twice between the first output and the pause took longer than a 40-token run once. The text an
        // uninterrupted run gives is computed from the scripted plan, not run.
        referenceOutput = ClusterTests.Expected(ClusterTests.Request(Prompt, seed: 7, maxTokens: 150));
        referenceOutput.Length.ShouldBeGreaterThan(0);
        await using (var sqlite = await ServerProcess.StartNewAsync(settings: new Dictionary<string, string?> { ["Scripted__TokensPerSecond"] = "5", ["Bots__AuthStateKey"] = AuthStateKey, ["Webhooks__AllowPrivateTargets"] = "true" }))
        {
            pausedId = (await RunAsync(sqlite.Environment, "gen", "start", "--model", "scripted", "--seed", "7", "--max-tokens", "150", Prompt)).Stdout.Trim();
            await Poll.UntilAsync(
                async () => Deserialize(await RunAsync(sqlite.Environment, "gen", "show", pausedId, "--json")).Output is { Length: > 0 },
                "some output before the pause");
            await RunAsync(sqlite.Environment, "gen", "pause", pausedId, "--reason", "moving", "--wait", "10");
            var created = JsonNode.Parse((await RunAsync(sqlite.Environment, "keys", "create", "--user", "alice", "--json")).Stdout)!;
            key = created["key"]!.GetValue<string>();
            keyId = created["id"]!.GetValue<string>();

            // A webhook subscription (on loopback, where nothing answers: its deliveries stay in the outbox) and a
            // bridge bot with login state, per-key login state and a message, so every table of the schema has rows.
            using (var alice = new HttpClient { BaseAddress = sqlite.Url })
            {
                alice.DefaultRequestHeaders.Authorization = new("Bearer", key);
                (await alice.PostAsJsonAsync(new Uri("/api/v1/webhooks", UriKind.Relative), new { url = $"http://127.0.0.1:{ServerProcess.FreePort()}/hook" })).EnsureSuccessStatusCode();
                (await alice.PostAsJsonAsync(new Uri("/api/v1/bots", UriKind.Relative), new { session_id = "moved-bot", bot_type = "bridge" })).EnsureSuccessStatusCode();
                using var state = new ByteArrayContent([1, 2, 3, 4]);
                state.Headers.ContentType = new("application/octet-stream");
                (await alice.PutAsync(new Uri("/api/v1/bots/moved-bot/auth-state", UriKind.Relative), state)).EnsureSuccessStatusCode();
                var keys = new Dictionary<string, Dictionary<string, object?>> { ["pre-key"] = new() { ["1"] = new { k = "one" }, ["2"] = "two" } };
                (await alice.PostAsJsonAsync(new Uri("/api/v1/bots/moved-bot/auth-keys", UriKind.Relative), keys)).EnsureSuccessStatusCode();
                (await alice.PostAsJsonAsync(new Uri("/api/v1/bots/moved-bot/messages", UriKind.Relative), new { text = "moving house" })).EnsureSuccessStatusCode();
            }

            (await sqlite.StopAsync()).ShouldBe(0, sqlite.Log);
            sourceRows = await SqliteRowsAsync(Path.Combine(sqlite.Data.Path, "holdfast.db"));

            var exportEnvironment = sqlite.Environment;
            exportEnvironment["Bots__AuthStateKey"] = AuthStateKey;
            await RunAsync(exportEnvironment, "export", files.File("from-sqlite.jsonl"));
        }

        var imported = await RunAsync(StoreEnvironment(files, db), "import", files.File("from-sqlite.jsonl"), "--store", db.Uri);
        imported.Stdout.ShouldContain("(verified)");
        imported.Stdout.ShouldNotContain(db.Password!);
        await RunAsync(StoreEnvironment(files, db), "export", files.File("from-postgres.jsonl"), "--store", db.Uri);

        Records(files.File("from-postgres.jsonl")).ShouldBe(Records(files.File("from-sqlite.jsonl")));

        // And back: PostgreSQL's export into a new SQLite data directory gives the same rows again.
        var backToSqlite = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = files.File("back-to-sqlite"), ["Bots__AuthStateKey"] = AuthStateKey };
        await RunAsync(backToSqlite, "import", files.File("from-postgres.jsonl"));
        await RunAsync(backToSqlite, "export", files.File("back-to-sqlite.jsonl"));
        Records(files.File("back-to-sqlite.jsonl")).ShouldBe(Records(files.File("from-sqlite.jsonl")));

        // Every table of the schema, found in the schema itself (not in the export), has rows and all of them moved
        // both ways: a table a later migration adds and the export forgets fails here.
        sourceRows.Where(t => t.Value == 0).Select(t => t.Key).ShouldBeEmpty("every table needs rows in this test; give a new table some");
        TableCounts(files.File("from-sqlite.jsonl")).ShouldBe(sourceRows);
        (await PostgresRowsAsync(db)).ShouldBe(sourceRows);
        (await SqliteRowsAsync(Path.Combine(files.File("back-to-sqlite"), "holdfast.db"))).ShouldBe(sourceRows);
        var again = await CliProcess.RunAsync(["import", files.File("from-sqlite.jsonl"), "--store", db.Uri], StoreEnvironment(files, db));
        again.ExitCode.ShouldBe(4, again.ToString());
        again.Stderr.ShouldContain("not empty");

        await using var postgres = await ServerProcess.StartNewAsync(settings: new Dictionary<string, string?>
        {
            ["Scripted__TokensPerSecond"] = "20",
            ["HOLDFAST_STORE"] = db.Uri,
            ["Bots__AuthStateKey"] = AuthStateKey,
        });
        var moved = Deserialize(await RunAsync(postgres.Environment, "gen", "show", pausedId, "--json"));
        moved.Status.ShouldBe(GenerationStatus.Paused);
        await RunAsync(postgres.Environment, "gen", "resume", pausedId);
        await RunAsync(postgres.Environment, "gen", "attach", pausedId);
        var finished = Deserialize(await RunAsync(postgres.Environment, "gen", "show", pausedId, "--json"));

        finished.Status.ShouldBe(GenerationStatus.Completed);
        finished.Output.ShouldBe(referenceOutput);
        using var http = new HttpClient { BaseAddress = postgres.Url };
        http.DefaultRequestHeaders.Authorization = new("Bearer", key);
        (await http.GetAsync(new Uri("/api/v1/generations", UriKind.Relative))).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await RunAsync(postgres.Environment, "keys", "ls", "--json")).Stdout.ShouldContain(keyId);
    }

    [Fact(Timeout = 180_000)]
    public async Task Status_ShowsStoreWithoutPasswordSchemaAndCounts()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        using var files = new TempDirectory();
        var before = await RunAsync(StoreEnvironment(files, db), "status", "--store", db.Uri);
        await RunAsync(StoreEnvironment(files, db), "migrate", "--store", db.Uri);

        var after = await RunAsync(StoreEnvironment(files, db), "status", "--json", "--store", db.Uri);

        before.Stdout.ShouldContain("migration(s) pending: run `holdfast migrate`");
        var status = JsonNode.Parse(after.Stdout)!;
        status["provider"]!.GetValue<string>().ShouldBe("postgres");
        status["store"]!.GetValue<string>().ShouldContain(":***@");
        status["schema"]!["current"]!.GetValue<bool>().ShouldBeTrue();
        (before.Stdout + before.Stderr + after.Stdout + after.Stderr).ShouldNotContain(db.Password!);
    }

    [Fact(Timeout = 180_000)]
    public async Task BadStore_OneLineExitCodeAndNoPassword()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        using var files = new TempDirectory();
        var uri = new Uri(db.Uri);
        var wrongPassword = $"postgres://{uri.UserInfo.Split(':')[0]}:not-the-password-42@{uri.Host}:{uri.Port}{uri.AbsolutePath}";
        var missingDatabase = $"postgres://{uri.UserInfo}@{uri.Host}:{uri.Port}/holdfast_missing_db";
        var unreachable = $"postgres://holdfast:unreachable-pw-42@127.0.0.1:{ClosedPort()}/holdfast";

        var cases = new (string Store, int Exit, string Says)[]
        {
            (wrongPassword, 2, "wrong password"),
            (missingDatabase, 2, "does not exist"),
            (unreachable, 5, "Cannot reach PostgreSQL"),
        };
        foreach (var (store, exit, says) in cases)
        {
            foreach (var command in new[] { new[] { "migrate", "--store", store }, ["status", "--store", store], ["keys", "create", "--user", "u", "--store", store] })
            {
                var result = await CliProcess.RunAsync(command, StoreEnvironment(files, db));

                result.ExitCode.ShouldBe(exit, result.ToString());
                result.Stderr.Trim().Split('\n').Length.ShouldBe(1, result.ToString());
                result.Stderr.ShouldContain(says);
                (result.Stdout + result.Stderr).ShouldNotContain("not-the-password-42");
                (result.Stdout + result.Stderr).ShouldNotContain("unreachable-pw-42");
                (result.Stdout + result.Stderr).ShouldNotContain(db.Password!);
            }
        }

        (await db.ScalarAsync("SELECT to_regclass('public.schema_migrations') IS NULL")).ShouldBe(true);
    }

    [Fact(Timeout = 240_000)]
    public async Task Serve_DatabaseDownAtStart_ReadyzIs503ThenReadyOnceItAnswers()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        var target = new Uri(db.Uri);
        using var proxy = new TcpForwarder(target.Host, target.Port);
        var store = $"postgres://{target.UserInfo}@127.0.0.1:{proxy.Port}{target.AbsolutePath}";
        await using var server = new ServerProcess(settings: new Dictionary<string, string?> { ["HOLDFAST_STORE"] = store });

        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = server.Url };
        var down = await http.GetAsync(new Uri("/readyz", UriKind.Relative));
        down.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
        (await down.Content.ReadAsStringAsync()).ShouldNotContain(db.Password!);

        proxy.Start();
        await Poll.UntilAsync(
            async () => (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).StatusCode == HttpStatusCode.OK,
            "/readyz 200 once PostgreSQL answers",
            TimeSpan.FromSeconds(90));
        var id = (await RunAsync(server.Environment, "gen", "start", "--model", "scripted", "--max-tokens", "20", "--wait", "Hello")).Stdout;
        id.ShouldNotBeNullOrWhiteSpace();
        server.Log.ShouldNotContain(db.Password!);
        server.Log.ShouldContain("cannot be reached at start");
    }

    [Fact(Timeout = 300_000)]
    public async Task ConnectionLost_MidGeneration_503WhileDownThenTheRunFinishesWithTheExactText()
    {
        // Arrange: a server on PostgreSQL through a forwarder that can cut it off; a reference run first.
        await using var db = await TestPostgres.CreateDatabaseAsync();
        var target = new Uri(db.Uri);
        using var proxy = new TcpForwarder(target.Host, target.Port);
        proxy.Start();
        var store = $"postgres://{target.UserInfo}@127.0.0.1:{proxy.Port}{target.AbsolutePath}";
        await using var server = await ServerProcess.StartNewAsync(settings: new Dictionary<string, string?> { ["Scripted__TokensPerSecond"] = "20", ["HOLDFAST_STORE"] = store });
        var key = JsonNode.Parse((await RunAsync(server.Environment, "keys", "create", "--user", "alice", "--json")).Stdout)!["key"]!.GetValue<string>();
        using var http = new HttpClient { BaseAddress = server.Url };
        http.DefaultRequestHeaders.Authorization = new("Bearer", key);
        var reference = Deserialize(await RunAsync(server.Environment, "gen", "start", "--model", "scripted", "--seed", "5", "--max-tokens", "120", "--wait", "--json", Prompt));
        var id = (await RunAsync(server.Environment, "gen", "start", "--model", "scripted", "--seed", "5", "--max-tokens", "120", Prompt)).Stdout.Trim();
        await Poll.UntilAsync(
            async () => Deserialize(await RunAsync(server.Environment, "gen", "show", id, "--json")).Output is { Length: > 10 },
            "some output before the connection is lost");

        // Act 1: every connection of the server is terminated by the database (pg_terminate_backend), then the server
        // is cut off altogether.
        var terminated = await db.ScalarAsync("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
        proxy.Stop();

        // Assert 1: while the store cannot be reached the server answers 503 (problem+json), never 500.
        var statuses = new List<HttpStatusCode>();
        await Poll.UntilAsync(
            async () =>
            {
                var ready = await http.GetAsync(new Uri("/readyz", UriKind.Relative));
                var session = await http.GetAsync(new Uri($"/api/v1/generations/{id}", UriKind.Relative));
                statuses.Add(ready.StatusCode);
                statuses.Add(session.StatusCode);
                return ready.StatusCode == HttpStatusCode.ServiceUnavailable && session.StatusCode == HttpStatusCode.ServiceUnavailable;
            },
            "503 from /readyz and the API while PostgreSQL is cut off",
            TimeSpan.FromSeconds(60));
        Convert.ToInt64(terminated, System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThan(0);
        statuses.ShouldNotContain(HttpStatusCode.InternalServerError);

        // Act 2: the database is back.
        proxy.Start();
        await Poll.UntilAsync(
            async () => (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).StatusCode == HttpStatusCode.OK,
            "/readyz 200 once PostgreSQL answers again",
            TimeSpan.FromSeconds(90));
        await Poll.UntilAsync(
            async () => Deserialize(await RunAsync(server.Environment, "gen", "show", id, "--json")).Status is GenerationStatus.Completed or GenerationStatus.Failed or GenerationStatus.Paused,
            "the run to finish or stop after the outage",
            TimeSpan.FromSeconds(120));
        var after = Deserialize(await RunAsync(server.Environment, "gen", "show", id, "--json"));
        output.WriteLine($"after the outage: {after.Status} ({after.Error ?? "no error"}), {after.Output?.Length ?? 0} of {reference.Output!.Length} characters; {terminated} backend(s) terminated; statuses seen while down: {string.Join(", ", statuses.Distinct())}");
        if (after.Status is GenerationStatus.Failed or GenerationStatus.Paused)
        {
            // The design allows the run to stop cleanly (failed or paused, with its partial output kept) when a write
            // cannot be stored; resuming then finishes it.
            reference.Output!.ShouldStartWith(after.Output ?? string.Empty);
            await RunAsync(server.Environment, "gen", "resume", id);
            await RunAsync(server.Environment, "gen", "attach", id);
        }

        // Assert 2: exactly the uninterrupted text, nothing lost or doubled.
        var finished = Deserialize(await RunAsync(server.Environment, "gen", "show", id, "--json"));
        finished.Status.ShouldBe(GenerationStatus.Completed, $"first seen after the outage: {after.Status} ({after.Error})");
        finished.Output.ShouldBe(reference.Output);
        server.Log.ShouldNotContain(db.Password!);
    }

    [Fact(Timeout = 300_000)]
    public async Task Sigkill_MidGeneration_RestartContinuesWithTheExactText()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        var settings = new Dictionary<string, string?> { ["Scripted__TokensPerSecond"] = "40", ["HOLDFAST_STORE"] = db.Uri };
        await using var server = await ServerProcess.StartNewAsync(settings: settings);
        var reference = Deserialize(await RunAsync(server.Environment, "gen", "start", "--model", "scripted", "--seed", "11", "--max-tokens", "80", "--wait", "--json", Prompt));
        var id = (await RunAsync(server.Environment, "gen", "start", "--model", "scripted", "--seed", "11", "--max-tokens", "80", Prompt)).Stdout.Trim();
        await Poll.UntilAsync(
            async () => Deserialize(await RunAsync(server.Environment, "gen", "show", id, "--json")).Output is { Length: > 20 },
            "output before the crash");

        await server.KillAsync();
        await server.StartAsync();
        await RunAsync(server.Environment, "gen", "attach", id);
        var finished = Deserialize(await RunAsync(server.Environment, "gen", "show", id, "--json"));

        finished.Status.ShouldBe(GenerationStatus.Completed);
        finished.Output.ShouldBe(reference.Output);
    }

    private static Dictionary<string, string?> StoreEnvironment(TempDirectory files, TestDatabase db) =>
        new(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = files.File("data-" + db.Name[^6..]), ["Bots__AuthStateKey"] = AuthStateKey };

    private static async Task<CliResult> RunAsync(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var result = await CliProcess.RunAsync(args, environment);
        result.ExitCode.ShouldBe(0, result.ToString());
        return result;
    }

    private static Holdfast.Client.Models.Generation Deserialize(CliResult result) => JsonSerializer.Deserialize<Holdfast.Client.Models.Generation>(result.Stdout, HoldfastJson.Options)!;

    /// <summary>The rows of an export (header left out), sorted: two exports of the same data must give the same list.</summary>
    private static List<string> Records(string path)
    {
        var lines = File.ReadAllLines(path);
        JsonNode.Parse(lines[0])!["format"]!.GetValue<string>().ShouldBe("holdfast-export");
        return [.. lines.Skip(1).Order(StringComparer.Ordinal)];
    }

    /// <summary>Rows per table in an export file.</summary>
    private static SortedDictionary<string, long> TableCounts(string path) => new(
        File.ReadAllLines(path).Skip(1).Select(l => JsonNode.Parse(l)!["table"]?.GetValue<string>()).OfType<string>()
            .GroupBy(t => t, StringComparer.Ordinal).ToDictionary(g => g.Key, g => (long)g.Count(), StringComparer.Ordinal),
        StringComparer.Ordinal);

    /// <summary>Rows of every table of a SQLite file (from <c>sqlite_master</c>) except the migrations ledger.</summary>
    private static async Task<SortedDictionary<string, long>> SqliteRowsAsync(string path)
    {
        var rows = new SortedDictionary<string, long>(StringComparer.Ordinal);
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        var tables = new List<string>();
        await using (var list = connection.CreateCommand())
        {
            // generation_progress holds running sessions' counters, SQLite's own: never moved (an export takes them
            // into the session's row, an import makes them from it).
            list.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name NOT IN ('schema_migrations', 'generation_progress')";
            await using var reader = await list.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                tables.Add(reader.GetString(0));
            }
        }

        foreach (var table in tables)
        {
            await using var count = connection.CreateCommand();
            count.CommandText = $"SELECT count(*) FROM \"{table}\"";
            rows[table] = (long)(await count.ExecuteScalarAsync())!;
        }

        return rows;
    }

    /// <summary>Rows of every table of the PostgreSQL database's public schema except the migrations ledger.</summary>
    private static async Task<SortedDictionary<string, long>> PostgresRowsAsync(TestDatabase db)
    {
        var rows = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var tables = (string[])(await db.ScalarAsync(
            "SELECT array_agg(table_name::text) FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'"))!;
        foreach (var table in tables)
        {
            rows[table] = (long)(await db.ScalarAsync($"SELECT count(*) FROM public.\"{table}\""))!;
        }

        return rows;
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>
    /// A loopback port that refuses connections until <see cref="Start"/>, then forwards each to the real server: a
    /// PostgreSQL that is "down" at first and comes up later on the same address. <see cref="Stop"/> cuts every live
    /// connection and refuses new ones again (the server "goes away"); <see cref="Start"/> brings it back.
    /// </summary>
    private sealed class TcpForwarder : IDisposable
    {
        private readonly string _host;
        private readonly int _targetPort;
        private readonly Lock _gate = new();
        private CancellationTokenSource _stop = new();
        private TcpListener? _listener;

        public TcpForwarder(string host, int targetPort)
        {
            _host = host;
            _targetPort = targetPort;
            Port = ClosedPort();
        }

        public int Port { get; }

        public void Start()
        {
            lock (_gate)
            {
                _stop = new CancellationTokenSource();
                _listener = new TcpListener(IPAddress.Loopback, Port);
                _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                _listener.Start();
                var listener = _listener;
                var stop = _stop.Token;
                _ = Task.Run(() => AcceptAsync(listener, stop));
            }
        }

        public void Stop()
        {
            lock (_gate)
            {
                _stop.Cancel();
                _listener?.Stop();
                _listener = null;
            }
        }

        public void Dispose()
        {
            Stop();
            _stop.Dispose();
        }

        private async Task AcceptAsync(TcpListener listener, CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await listener.AcceptTcpClientAsync(stop);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or InvalidOperationException)
                {
                    return;
                }

                _ = Task.Run(
                    async () =>
                {
                    using (client)
                    using (var upstream = new TcpClient())
                    {
                        try
                        {
                            await upstream.ConnectAsync(_host, _targetPort, stop);
                            var a = client.GetStream();
                            var b = upstream.GetStream();
                            await Task.WhenAny(a.CopyToAsync(b, stop), b.CopyToAsync(a, stop));
                        }
                        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
                        {
                            // A connection ends (or is cut by Stop).
                        }
                    }
                },
                    CancellationToken.None);
            }
        }
    }
}
