using System.Diagnostics;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>
/// <c>holdfast serve</c> gets SIGTERM mid-generation: it exits 0 within its shutdown timeout, leaving the session
/// queued (policy <c>auto</c>) or paused as <c>interrupted</c> (policy <c>manual</c>) with everything a reader saw
/// persisted and the interruption in the audit trail; started again, the session ends with exactly the text of an
/// uninterrupted run.
/// </summary>
public sealed class GracefulShutdownTests
{
    /// <summary><c>HostOptions.ShutdownTimeout</c> of the server (20 s) plus the time a process needs to exit.</summary>
    private static readonly TimeSpan ShutdownDeadline = TimeSpan.FromSeconds(25);

    [Theory(Timeout = 240_000)]
    [InlineData("Auto", "queued", null)]
    [InlineData("Manual", "paused", "interrupted")]
    public async Task Serve_SigtermMidGeneration_Exits0_SessionInterruptedPerPolicy_RestartCompletesSameText(string policy, string statusWhileDown, string? pauseReasonWhileDown)
    {
        using var data = new TempDirectory("hf");
        var port = ServeProcess.FreePort();
        var environment = new Dictionary<string, string>
        {
            ["Scripted__TokensPerSecond"] = "30",
            ["Scripted__MaxTokens"] = "150",
            ["Generation__RecoveryPolicy"] = policy,
            ["Logging__LogLevel__Default"] = "Warning",
        };
        var socketPath = Path.Combine(data.Path, "holdfast.sock");
        var request = new CreateGenerationRequest("scripted", [new InputMessage("user", "a story told across a shutdown")], Parameters: new GenerationParameters(Seed: 23));
        var serve = await ServeProcess.StartAsync(data.Path, port, environment);
        try
        {
            Generation generation;
            using (var socket = UnixSocketHttp.Create(socketPath))
            {
                generation = await (await socket.PostJsonAsync("/api/v1/generations", request)).ReadAsync<Generation>();
                await Poll.UntilAsync(
                    async () => (await (await socket.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>()).LastSeq >= 10,
                    "some output before the shutdown");
            }

            var reader = new SseFollower(() => UnixSocketHttp.Create(socketPath), $"/api/v1/generations/{generation.Id}/stream");
            var reading = reader.RunAsync();
            await Poll.UntilAsync(() => Task.FromResult(reader.Chunks.Count >= 5), "the reader got chunks before the shutdown");

            // SIGTERM while the generation runs.
            var stopping = Stopwatch.StartNew();
            var exitCode = await serve.TerminateAsync(ShutdownDeadline);
            stopping.Stop();
            exitCode.ShouldBe(0, $"a graceful shutdown exits 0 (took {stopping.Elapsed.TotalSeconds:0.0} s):\n{serve.Output}");
            reading.IsCompleted.ShouldBeFalse("the reader waits for the server to come back");
            var seenWhileDown = reader.Seqs.ToList();
            seenWhileDown.ShouldNotBeEmpty();

            // While it is down: the file says what the policy says, holds everything the reader saw, and the audit
            // trail has the interruption.
            var stored = await ReadStoredAsync(Path.Combine(data.Path, "holdfast.db"), generation.Id);
            stored.Status.ShouldBe(statusWhileDown);
            stored.PauseReason.ShouldBe(pauseReasonWhileDown);
            stored.LastSeq.ShouldBeGreaterThanOrEqualTo(seenWhileDown.Max(), "every event a reader saw was committed before the exit");
            stored.LogMaxSeq.ShouldBe(stored.LastSeq);
            stored.Output.ShouldStartWith(reader.Text, customMessage: "the stored output holds the text the reader printed");
            stored.Audit.ShouldContain(e => e.Action == "interrupt" && e.From == "running" && e.To == statusWhileDown, string.Join("; ", stored.Audit));

            serve.Dispose();
            serve = await ServeProcess.StartAsync(data.Path, port, environment);
            using var after = UnixSocketHttp.Create(socketPath);
            if (policy == "Manual")
            {
                var restored = await (await after.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>();
                restored.Status.ShouldBe(GenerationStatus.Paused, "manual recovery waits for a person");
                restored.PauseReason.ShouldBe("interrupted");
                (await (await after.PostAsync($"/api/v1/generations/{generation.Id}/resume", null)).ReadAsync<Generation>()).Status.ShouldBeOneOf(GenerationStatus.Queued, GenerationStatus.Running);
            }

            await reading.WaitAsync(TimeSpan.FromSeconds(120));
            var final = await (await after.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>();
            final.Status.ShouldBe(GenerationStatus.Completed);
            reader.Done!.Status.ShouldBe(GenerationStatus.Completed);
            reader.Connections.ShouldBeGreaterThan(1, "the reader reconnected after the restart");
            reader.ShouldBeGaplessAndDuplicateFree();
            reader.Text.ShouldBe(final.Output);

            var reference = await (await after.PostJsonAsync("/api/v1/generations", request)).ReadAsync<Generation>();
            var uninterrupted = await Poll.UntilAsync(
                async () => await (await after.GetAsync($"/api/v1/generations/{reference.Id}")).ReadAsync<Generation>(),
                g => g.Status == GenerationStatus.Completed,
                "the uninterrupted reference run completes",
                TimeSpan.FromSeconds(60));
            final.Output.ShouldBe(uninterrupted.Output);
        }
        finally
        {
            serve.Dispose();
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task Serve_SigtermWhileTheStoreIsBusy_WaitsLongerThan2sForTheLastWrite_Exits0()
    {
        using var data = new TempDirectory("hf");
        var environment = new Dictionary<string, string>
        {
            ["Scripted__TokensPerSecond"] = "30",
            ["Scripted__MaxTokens"] = "150",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        var serve = await ServeProcess.StartAsync(data.Path, ServeProcess.FreePort(), environment);
        try
        {
            Generation generation;
            using (var socket = UnixSocketHttp.Create(Path.Combine(data.Path, "holdfast.sock")))
            {
                generation = await (await socket.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", "slow to stop")]))).ReadAsync<Generation>();
                await Poll.UntilAsync(
                    async () => (await (await socket.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>()).LastSeq >= 5,
                    "the generation runs");
            }

            // Another process holds the database's write lock, so the runner's last commit waits for it (busy timeout).
            var database = Path.Combine(data.Path, "holdfast.db");
            await using var blocker = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false }.ToString());
            await blocker.OpenAsync();
            await using (var begin = blocker.CreateCommand())
            {
                begin.CommandText = "BEGIN IMMEDIATE";
                await begin.ExecuteNonQueryAsync();
            }

            var stopping = Stopwatch.StartNew();
            var terminating = serve.TerminateAsync(ShutdownDeadline);
            await Poll.UntilAsync(
                () => terminating.IsCompleted
                    ? throw new InvalidOperationException($"holdfast serve ended {stopping.Elapsed.TotalSeconds:0.0} s into its shutdown, before its last write could be made:\n{serve.Output}")
                    : Task.FromResult(stopping.Elapsed >= TimeSpan.FromSeconds(3)),
                "the server is still shutting down 3 s after SIGTERM (its shutdown timeout is 20 s)");
            await using (var rollback = blocker.CreateCommand())
            {
                rollback.CommandText = "ROLLBACK";
                await rollback.ExecuteNonQueryAsync();
            }

            (await terminating).ShouldBe(0, serve.Output);
            var stored = await ReadStoredAsync(database, generation.Id);
            stored.Status.ShouldBe("queued", "the run was interrupted and persisted, not lost to a forced exit");
            stored.Audit.ShouldContain(e => e.Action == "interrupt");
        }
        finally
        {
            serve.Dispose();
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task Serve_SigtermWhileNonBackgroundResponseWaits_AnswersItInProgressAndExits0Promptly()
    {
        using var data = new TempDirectory("hf");
        var environment = new Dictionary<string, string>
        {
            ["Scripted__TokensPerSecond"] = "20",
            ["Scripted__MaxTokens"] = "400",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        var socketPath = Path.Combine(data.Path, "holdfast.sock");
        var serve = await ServeProcess.StartAsync(data.Path, ServeProcess.FreePort(), environment);
        try
        {
            using var socket = UnixSocketHttp.Create(socketPath);
            var key = (await (await socket.PostJsonAsync("/api/v1/keys", new CreateApiKeyRequest("alice"))).ReadAsync<CreatedApiKey>()).Key;
            using var http = new HttpClient { BaseAddress = serve.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            var waiting = http.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"Take your time."}"""));
            var chatWaiting = http.PostAsync("/v1/chat/completions", Http.Json("""{"model":"scripted","messages":[{"role":"user","content":"Take yours too."}]}"""));
            await Poll.UntilAsync(
                async () => (await (await socket.GetAsync("/api/v1/generations")).ReadAsync<ItemPage<Generation>>()).Items is [{ LastSeq: >= 3 }, { LastSeq: >= 3 }],
                "both generations run while their requests wait");

            var stopping = Stopwatch.StartNew();
            var exitCode = await serve.TerminateAsync(ShutdownDeadline);

            exitCode.ShouldBe(0, serve.Output);
            stopping.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10), "a waiting request does not hold the shutdown up to its timeout");
            using var answer = await waiting;
            answer.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
            var json = System.Text.Json.Nodes.JsonNode.Parse(await answer.Content.ReadAsStringAsync())!;
            ((string?)json["status"]).ShouldBeOneOf("queued", "in_progress");

            // A chat completion has no "in progress" answer: a 503 problem naming the generation that is kept.
            using var chat = await chatWaiting;
            (await chat.ShouldBeProblemAsync(System.Net.HttpStatusCode.ServiceUnavailable)).Detail!.ShouldContain("/api/v1/generations/gen_");
        }
        finally
        {
            serve.Dispose();
        }
    }

    private sealed record StoredSession(string Status, string? PauseReason, long LastSeq, long LogMaxSeq, string Output, List<(string Action, string? From, string? To)> Audit);

    /// <summary>Reads the session straight from the SQLite file (read-only; no server is running).</summary>
    private static async Task<StoredSession> ReadStoredAsync(string databasePath, string id)
    {
        var connectionString = new SqliteConnectionStringBuilder { DataSource = databasePath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString();
        await using var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync();
        await using var session = connection.CreateCommand();
        session.CommandText = """
            SELECT status, pause_reason, last_seq, output,
                   (SELECT COALESCE(MAX(seq), 0) FROM generation_log WHERE session_id = $id)
            FROM generation_sessions WHERE id = $id
            """;
        session.Parameters.AddWithValue("$id", id);
        await using var row = await session.ExecuteReaderAsync();
        (await row.ReadAsync()).ShouldBeTrue($"generation {id} is stored");
        var status = row.GetString(0);
        var pauseReason = await row.IsDBNullAsync(1) ? null : row.GetString(1);
        var lastSeq = row.GetInt64(2);
        var output = row.GetString(3);
        var logMaxSeq = row.GetInt64(4);

        await using var events = connection.CreateCommand();
        events.CommandText = "SELECT action, from_state, to_state FROM session_events WHERE session_kind = 'generation' AND session_id = $id ORDER BY seq";
        events.Parameters.AddWithValue("$id", id);
        await using var audit = await events.ExecuteReaderAsync();
        var trail = new List<(string, string?, string?)>();
        while (await audit.ReadAsync())
        {
            trail.Add((audit.GetString(0), await audit.IsDBNullAsync(1) ? null : audit.GetString(1), await audit.IsDBNullAsync(2) ? null : audit.GetString(2)));
        }

        return new StoredSession(status, pauseReason, lastSeq, logMaxSeq, output, trail);
    }
}
