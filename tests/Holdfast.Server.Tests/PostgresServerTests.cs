using System.Net;
using System.Text.Json.Nodes;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>
/// Every test of <see cref="GenerationApiTests"/> (HTTP create/stream/pause/resume/cancel/fork/delete, SSE followers
/// across a restart, heartbeats, compaction) on a real server whose store is PostgreSQL: one new database per test
/// (needs <c>HOLDFAST_TEST_POSTGRES</c>, see <see cref="TestPostgres"/>; never skipped).
/// </summary>
public sealed class PostgresGenerationApiTests : GenerationApiTests, IAsyncLifetime
{
    private TestDatabase _db = null!;

    public async Task InitializeAsync() => _db = await TestPostgres.CreateDatabaseAsync("hf_server");

    public async Task DisposeAsync() => await _db.DisposeAsync();

    protected override Task<TestServer> StartServerAsync(IDictionary<string, string?>? settings = null) =>
        TestServer.StartAsync(PostgresServer.Settings(_db, settings));
}

/// <summary>The OpenAI-compatible face and the bot API on a real server whose store is PostgreSQL.</summary>
public sealed class PostgresServerTests : IAsyncLifetime
{
    private TestDatabase _db = null!;

    public async Task InitializeAsync() => _db = await TestPostgres.CreateDatabaseAsync("hf_server");

    public async Task DisposeAsync() => await _db.DisposeAsync();

    [Fact(Timeout = 60_000)]
    public async Task ChatCompletion_PlainAndStreamed_AnsweredAndStoredAsGenerationsInPostgres()
    {
        await using var server = await TestServer.StartAsync(PostgresServer.Settings(_db));
        using var http = server.Tcp(await server.CreateKeyAsync("alice"));

        using var plain = await http.PostAsync("/v1/chat/completions", Http.Json("""{"model":"scripted","messages":[{"role":"user","content":"Say something."}],"max_tokens":30,"seed":4}"""));
        using var streamed = await http.PostAsync("/v1/chat/completions", Http.Json("""{"model":"scripted","messages":[{"role":"user","content":"Say something."}],"max_tokens":30,"seed":4,"stream":true}"""));

        plain.StatusCode.ShouldBe(HttpStatusCode.OK);
        var answer = (string?)JsonNode.Parse(await plain.Content.ReadAsStringAsync())!["choices"]![0]!["message"]!["content"];
        answer.ShouldNotBeNullOrEmpty();
        streamed.StatusCode.ShouldBe(HttpStatusCode.OK);
        var body = await streamed.Content.ReadAsStringAsync();
        var deltas = body.Split('\n')
            .Where(l => l.StartsWith("data: {", StringComparison.Ordinal))
            .Select(l => (string?)JsonNode.Parse(l["data: ".Length..])!["choices"]![0]!["delta"]?["content"])
            .ToList();
        string.Concat(deltas).ShouldBe(answer);
        body.ShouldContain("data: [DONE]");
        (await _db.ScalarAsync("SELECT count(*) FROM generation_sessions WHERE status = 'completed' AND owner = 'alice'")).ShouldBe(2L);
    }

    [Fact(Timeout = 60_000)]
    public async Task Bots_CreateQrEnd_OverHttp_RowAsTheDesignRecordSaysInPostgres()
    {
        await using var server = await TestServer.StartAsync(PostgresServer.Settings(_db));
        using var http = server.Tcp(await server.CreateKeyAsync("alice"));

        using var created = await http.PostJsonAsync("/api/v1/bots", new StartBotRequest("pg-bot"));
        var qr = await Poll.UntilAsync(
            async () => await http.GetAsync("/api/v1/bots/pg-bot/qr?format=png"),
            r => r.StatusCode == HttpStatusCode.OK,
            "a QR code for the new bot");
        var stored = await _db.ScalarAsync("SELECT status || ':' || (qr_data IS NOT NULL) FROM bot_sessions WHERE session_id = 'pg-bot'");
        using var ended = await http.PostAsync("/api/v1/bots/pg-bot/end", null);
        var bot = await (await http.GetAsync("/api/v1/bots/pg-bot")).ReadAsync<Bot>();

        created.StatusCode.ShouldBe(HttpStatusCode.Created);
        qr.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
        stored.ShouldBe("active:true");
        ended.StatusCode.ShouldBe(HttpStatusCode.OK);
        bot.Status.ShouldBe(BotStatus.Inactive);
        bot.QrData.ShouldBeNull();
        (await _db.ScalarAsync("SELECT status || ':' || (qr_data IS NULL) FROM bot_sessions WHERE session_id = 'pg-bot'")).ShouldBe("inactive:true");
        ((long)(await _db.ScalarAsync("SELECT count(*) FROM session_events WHERE session_id = 'pg-bot' AND action IN ('bot.created', 'bot.qr', 'bot.ended')"))!).ShouldBe(3L);
    }
}

/// <summary>Server settings that put the store on a test PostgreSQL database.</summary>
internal static class PostgresServer
{
    public static Dictionary<string, string?> Settings(TestDatabase db, IDictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>(), StringComparer.Ordinal)
        {
            ["Storage:ConnectionString"] = db.Uri,
        };
        return all;
    }
}
