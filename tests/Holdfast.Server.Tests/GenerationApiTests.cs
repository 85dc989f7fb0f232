using System.Net;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>
/// Generations over HTTP and SSE against a real server: create, stream, idempotency, pause/resume, cancel/fork/delete,
/// followers across a restart, heartbeats, compaction. On SQLite here; <see cref="PostgresGenerationApiTests"/> runs
/// the same tests on PostgreSQL.
/// </summary>
public class GenerationApiTests
{
    /// <summary>Starts the server these tests use (the embedded SQLite file; a derived class picks another store).</summary>
    protected virtual Task<TestServer> StartServerAsync(IDictionary<string, string?>? settings = null) => TestServer.StartAsync(settings);

    private static CreateGenerationRequest Request(string prompt = "tell me a story", int? maxTokens = null, long seed = 7) =>
        new("scripted", [new InputMessage("user", prompt)], Parameters: new GenerationParameters(Seed: seed, MaxTokens: maxTokens));

    [Fact(Timeout = 60_000)]
    public async Task Create_Stream_Completes_OutputEqualsStreamedText()
    {
        await using var server = await StartServerAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));

        using var created = await alice.PostJsonAsync("/api/v1/generations", Request(maxTokens: 40));
        created.StatusCode.ShouldBe(HttpStatusCode.Created);
        var generation = await created.ReadAsync<Generation>();
        generation.Owner.ShouldBe("alice");
        var follower = new SseFollower(() => server.Tcp(alice.DefaultRequestHeaders.Authorization!.Parameter), $"/api/v1/generations/{generation.Id}/stream");
        await follower.RunAsync();

        follower.Done!.Status.ShouldBe(GenerationStatus.Completed);
        follower.ShouldBeGaplessAndDuplicateFree();
        var final = await (await alice.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>();
        final.Status.ShouldBe(GenerationStatus.Completed);
        final.Output.ShouldNotBeNullOrEmpty();
        follower.Text.ShouldBe(final.Output);
        var log = await (await alice.GetAsync($"/api/v1/generations/{generation.Id}/log?after=0&limit=5000")).ReadAsync<LogPage>();
        string.Concat(log.Items.Where(e => e.Type == "chunk").Select(e => e.Text)).ShouldBe(final.Output);
        var events = await (await alice.GetAsync($"/api/v1/generations/{generation.Id}/events")).ReadAsync<AuditPage>();
        events.Items.ShouldNotBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task Create_SameIdempotencyKey_ReturnsSameSessionWith200()
    {
        await using var server = await StartServerAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));

        async Task<HttpResponseMessage> PostAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/generations") { Content = System.Net.Http.Json.JsonContent.Create(Request(), options: HoldfastJson.Options) };
            request.Headers.Add("Idempotency-Key", "order-42");
            return await alice.SendAsync(request);
        }

        using var first = await PostAsync();
        using var second = await PostAsync();

        first.StatusCode.ShouldBe(HttpStatusCode.Created);
        second.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await second.ReadAsync<Generation>()).Id.ShouldBe((await first.ReadAsync<Generation>()).Id);
        (await (await alice.GetAsync("/api/v1/generations")).ReadAsync<ItemPage<Generation>>()).Items.Count.ShouldBe(1);
    }

    [Fact(Timeout = 90_000)]
    public async Task PauseResume_WithWait_ContinuesToSameTextAsUninterrupted()
    {
        await using var server = await StartServerAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "60" });
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var reference = await (await alice.PostJsonAsync("/api/v1/generations", Request(maxTokens: 60))).ReadAsync<Generation>();
        var interrupted = await (await alice.PostJsonAsync("/api/v1/generations", Request(maxTokens: 60))).ReadAsync<Generation>();

        await Poll.UntilAsync(
            async () => (await (await alice.GetAsync($"/api/v1/generations/{interrupted.Id}")).ReadAsync<Generation>()).LastSeq >= 5,
            "some output before pausing");
        var paused = await (await alice.PostAsync($"/api/v1/generations/{interrupted.Id}/pause?wait=10", null)).ReadAsync<Generation>();
        paused.Status.ShouldBe(GenerationStatus.Paused);
        var again = await (await alice.PostAsync($"/api/v1/generations/{interrupted.Id}/pause", null)).ReadAsync<Generation>();
        again.Version.ShouldBe(paused.Version);
        (await (await alice.PostAsync($"/api/v1/generations/{interrupted.Id}/resume", null)).ReadAsync<Generation>()).Status.ShouldBeOneOf(GenerationStatus.Queued, GenerationStatus.Running);

        var done = await Poll.UntilAsync(
            async () => await (await alice.GetAsync($"/api/v1/generations/{interrupted.Id}")).ReadAsync<Generation>(),
            g => g.Status == GenerationStatus.Completed,
            "the resumed generation completes");
        var expected = await Poll.UntilAsync(
            async () => await (await alice.GetAsync($"/api/v1/generations/{reference.Id}")).ReadAsync<Generation>(),
            g => g.Status == GenerationStatus.Completed,
            "the reference generation completes");
        done.Output.ShouldBe(expected.Output);
        await (await alice.PostAsync($"/api/v1/generations/{interrupted.Id}/resume", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict);

        var metrics = await alice.GetStringAsync("/metrics");
        metrics.ShouldContain("holdfast_sessions{kind=\"generation\",status=\"completed\"} 2");
        // Every control call is timed: the pause that waited for the runner, the repeated one that did not, the
        // resume, and the refused resume of a completed session.
        metrics.ShouldContain("holdfast_control_duration_milliseconds_count{command=\"pause\",outcome=\"ok\",wait=\"true\"} 1");
        metrics.ShouldContain("holdfast_control_duration_milliseconds_count{command=\"pause\",outcome=\"ok\",wait=\"false\"} 1");
        metrics.ShouldContain("holdfast_control_duration_milliseconds_count{command=\"resume\",outcome=\"ok\",wait=\"false\"} 1");
        metrics.ShouldContain("holdfast_control_duration_milliseconds_count{command=\"resume\",outcome=\"error\",wait=\"false\"} 1");
        metrics.ShouldMatch(@"holdfast_control_duration_milliseconds_sum\{command=""pause"",outcome=""ok"",wait=""true""\} [0-9.]+");
        metrics.ShouldMatch(@"holdfast_generation_chunks_committed_total [1-9]");
        metrics.ShouldMatch(@"holdfast_generation_flush_duration_milliseconds_count [1-9]");
    }

    [Fact(Timeout = 60_000)]
    public async Task CancelForkDelete_Work_AndListFiltersByStatus()
    {
        await using var server = await StartServerAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "20" });
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var generation = await (await alice.PostJsonAsync("/api/v1/generations", Request())).ReadAsync<Generation>();
        await Poll.UntilAsync(
            async () => (await (await alice.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>()).LastSeq >= 3,
            "some output before cancelling");

        var cancelled = await (await alice.PostAsync($"/api/v1/generations/{generation.Id}/cancel?wait=10", null)).ReadAsync<Generation>();
        cancelled.Status.ShouldBe(GenerationStatus.Cancelled);
        var fork = await alice.PostJsonAsync($"/api/v1/generations/{generation.Id}/fork", new ForkRequest(2));
        fork.StatusCode.ShouldBe(HttpStatusCode.Created);
        var forked = await fork.ReadAsync<Generation>();
        forked.ForkedFrom.ShouldBe(generation.Id);

        var cancelledList = await (await alice.GetAsync("/api/v1/generations?status=cancelled")).ReadAsync<ItemPage<Generation>>();
        cancelledList.Items.ShouldHaveSingleItem().Id.ShouldBe(generation.Id);
        (await alice.DeleteAsync($"/api/v1/generations/{generation.Id}")).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        await (await alice.GetAsync($"/api/v1/generations/{generation.Id}")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact(Timeout = 120_000)]
    public async Task Stream_ThreeReadersAtDifferentOffsets_AcrossInProcessRestart_EachGetsFullTextOnce()
    {
        await using var server = await StartServerAsync(new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "40",
            ["Scripted:MaxTokens"] = "200",
        });
        var key = await server.CreateKeyAsync("alice");
        using var alice = server.Tcp(key);
        var generation = await (await alice.PostJsonAsync("/api/v1/generations", Request())).ReadAsync<Generation>();
        await Poll.UntilAsync(
            async () => (await (await alice.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>()).LastSeq >= 10,
            "some output before attaching");

        // The restart gets a new port; readers ask the current server each time they reconnect.
        var path = $"/api/v1/generations/{generation.Id}/stream";
        var offsets = new long[] { 0, 3, 8 };
        var followers = offsets.Select(_ => new SseFollower(() => server.Tcp(key), path)).ToArray();
        var runs = followers.Select((f, i) => f.RunAsync(offsets[i])).ToArray();
        await Poll.UntilAsync(() => Task.FromResult(followers.All(f => f.Chunks.Count > 10)), "every reader got some chunks");

        await server.RestartAsync();
        await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(90));

        var final = await (await server.Tcp(key).GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>();
        final.Status.ShouldBe(GenerationStatus.Completed);
        var log = await (await server.Tcp(key).GetAsync($"/api/v1/generations/{generation.Id}/log?limit=5000")).ReadAsync<LogPage>();
        for (var i = 0; i < followers.Length; i++)
        {
            followers[i].Done!.Status.ShouldBe(GenerationStatus.Completed);
            followers[i].Connections.ShouldBeGreaterThan(1);
            followers[i].ShouldBeGaplessAndDuplicateFree(offsets[i]);
            followers[i].Text.ShouldBe(string.Concat(log.Items.Where(e => e.Type == "chunk" && e.Seq > offsets[i]).Select(e => e.Text)));
        }

        followers[0].Text.ShouldBe(final.Output);
    }

    [Fact(Timeout = 60_000)]
    public async Task Stream_IdleSession_SendsHeartbeats()
    {
        await using var server = await StartServerAsync(new Dictionary<string, string?> { ["Server:HeartbeatInterval"] = "00:00:00.200" });
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var generation = await (await alice.PostJsonAsync("/api/v1/generations", Request())).ReadAsync<Generation>();
        await alice.PostAsync($"/api/v1/generations/{generation.Id}/pause?wait=10", null);

        using var response = await alice.GetAsync($"/api/v1/generations/{generation.Id}/stream?after=100000", HttpCompletionOption.ResponseHeadersRead);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("text/event-stream");
        await using var body = await response.Content.ReadAsStreamAsync();
        var beats = 0;
        await foreach (var e in SseFollower.ReadEventsAsync(body))
        {
            if (e.Event == "heartbeat" && ++beats == 2)
            {
                break;
            }
        }

        beats.ShouldBe(2);
    }

    [Fact(Timeout = 60_000)]
    public async Task Stream_AfterSeqInsideCompactedLog_400ProblemBeforeAnyEvent_FromZeroStillWhole()
    {
        await using var server = await StartServerAsync(new Dictionary<string, string?>
        {
            ["Generation:LogRetention"] = "00:00:00.200",
            ["Generation:PollInterval"] = "00:00:00.100",
            ["Scripted:TokensPerSecond"] = "0",
        });
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var generation = await (await alice.PostJsonAsync("/api/v1/generations", Request(maxTokens: 30))).ReadAsync<Generation>();
        var log = await Poll.UntilAsync(
            async () => await (await alice.GetAsync($"/api/v1/generations/{generation.Id}/log?after=0&limit=5000")).ReadAsync<LogPage>(),
            page => page.Items.Count(e => e.Type == "chunk") == 1,
            "the finished session's log to be compacted");
        var merged = log.Items.Single(e => e.Type == "chunk").Seq;

        using var inside = await alice.GetAsync($"/api/v1/generations/{generation.Id}/stream?after={merged / 2}");
        var problem = await inside.ShouldBeProblemAsync(HttpStatusCode.BadRequest);
        var whole = new SseFollower(() => server.Tcp(alice.DefaultRequestHeaders.Authorization!.Parameter), $"/api/v1/generations/{generation.Id}/stream");
        await whole.RunAsync();
        var final = await (await alice.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>();

        problem.Detail!.ShouldContain("compacted");
        whole.Text.ShouldBe(final.Output);
        whole.Done!.Status.ShouldBe(GenerationStatus.Completed);
    }
}
