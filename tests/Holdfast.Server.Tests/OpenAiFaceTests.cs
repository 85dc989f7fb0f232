using System.Net;
using System.Text.Json;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Holdfast.TestHelpers.OpenAi;

namespace Holdfast.Server.Tests;

/// <summary>Issue 10 items 13 and 15: unknown models fail fast; /v1/models, DELETE /v1/responses, error codes, echoes.</summary>
public sealed class OpenAiFaceTests
{
    private static async Task<(OpenAiEmulator Emulator, TestServer Server)> StartWithListingBackendAsync()
    {
        var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { Models = ["m-one", "m-two"], MaxTokens = 5, TokenDelay = TimeSpan.Zero });
        var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            [HoldfastServer.DefaultBackendKey] = "default",
            ["Backends:default:BaseUrl"] = emulator.BaseUrl,
            ["Backends:default:Models:0"] = "m-configured",
        });
        return (emulator, server);
    }

    [Fact(Timeout = 60_000)]
    public async Task UnknownModel_FailsFast_404ModelNotFound_InBothApis_NothingCreated()
    {
        var (emulator, server) = await StartWithListingBackendAsync();
        await using var _ = emulator;
        await using var __ = server;
        using var client = server.Tcp(await server.CreateKeyAsync("alice"));

        using var openAi = await client.PostAsync("/v1/responses", Http.Json("""{"model":"nope","input":"hi","background":true}"""));
        using var native = await client.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("nope", [new InputMessage("user", "hi")]));
        using var known = await client.PostAsync("/v1/responses", Http.Json("""{"model":"m-two","input":"hi"}"""));

        var body = await openAi.Content.ReadAsStringAsync();
        ((int)openAi.StatusCode).ShouldBe(404, body);
        using (var json = JsonDocument.Parse(body))
        {
            var error = json.RootElement.GetProperty("error");
            error.GetProperty("code").GetString().ShouldBe("model_not_found");
            error.GetProperty("param").GetString().ShouldBe("model");
            error.GetProperty("type").GetString().ShouldBe("invalid_request_error");
            error.GetProperty("message").GetString().ShouldNotBeNull().ShouldContain("m-one");
        }

        (await native.ShouldBeProblemAsync(HttpStatusCode.NotFound)).Detail.ShouldNotBeNull().ShouldContain("'nope'");
        known.StatusCode.ShouldBe(HttpStatusCode.OK, await known.Content.ReadAsStringAsync());
        var all = await (await client.GetAsync("/api/v1/generations")).ReadAsync<ItemPage<Holdfast.Client.Models.Generation>>();
        all.Items.ShouldHaveSingleItem().Model.ShouldBe("m-two");
    }

    [Fact(Timeout = 60_000)]
    public async Task Models_ListsConfiguredAndServedModels_InOpenAiShape()
    {
        var (emulator, server) = await StartWithListingBackendAsync();
        await using var _ = emulator;
        await using var __ = server;
        using var client = server.Tcp(await server.CreateKeyAsync("alice"));

        using var response = await client.GetAsync("/v1/models");

        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.OK, body);
        using var json = JsonDocument.Parse(body);
        json.RootElement.GetProperty("object").GetString().ShouldBe("list");
        var models = json.RootElement.GetProperty("data").EnumerateArray().ToList();
        models.ShouldAllBe(m => m.GetProperty("object").GetString() == "model");
        models.Select(m => m.GetProperty("id").GetString()).ShouldBe(["scripted", "m-configured", "m-one", "m-two"], ignoreOrder: true);
        models.Single(m => m.GetProperty("id").GetString() == "m-one").GetProperty("owned_by").GetString().ShouldBe("default");
    }

    [Fact(Timeout = 60_000)]
    public async Task DeleteResponse_Finished_IsDeletedThen404_InProgressIsRefused()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "5" });
        using var client = server.Tcp(await server.CreateKeyAsync("alice"));
        var done = await (await client.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"hi","max_output_tokens":2}"""))).ReadAsync<JsonElement>();
        var running = await (await client.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"long","background":true}"""))).ReadAsync<JsonElement>();
        var doneId = done.GetProperty("id").GetString();
        var runningId = running.GetProperty("id").GetString();

        using var deleted = await client.DeleteAsync($"/v1/responses/{doneId}");
        using var refused = await client.DeleteAsync($"/v1/responses/{runningId}");

        var deletedBody = await deleted.Content.ReadAsStringAsync();
        deleted.StatusCode.ShouldBe(HttpStatusCode.OK, deletedBody);
        using (var json = JsonDocument.Parse(deletedBody))
        {
            json.RootElement.GetProperty("id").GetString().ShouldBe(doneId);
            json.RootElement.GetProperty("object").GetString().ShouldBe("response.deleted");
            json.RootElement.GetProperty("deleted").GetBoolean().ShouldBeTrue();
        }

        (await client.GetAsync($"/v1/responses/{doneId}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        ((int)refused.StatusCode).ShouldBe(409, await refused.Content.ReadAsStringAsync());
        (await client.GetAsync($"/v1/responses/{runningId}")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact(Timeout = 60_000)]
    public async Task Unauthorized_CarriesInvalidApiKeyCode()
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Tcp("hf_000000000000_wrong");

        using var response = await client.GetAsync("/v1/responses/resp_x");

        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized, body);
        using var json = JsonDocument.Parse(body);
        json.RootElement.GetProperty("error").GetProperty("code").GetString().ShouldBe("invalid_api_key");
    }

    [Fact(Timeout = 60_000)]
    public async Task Response_EchoesInstructionsAndTools_AndShowsTheContinuation()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "20" });
        using var client = server.Tcp(await server.CreateKeyAsync("alice"));

        var withInstructions = await (await client.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"hi","instructions":"Be brief.","tools":[],"max_output_tokens":3}"""))).ReadAsync<JsonElement>();
        var withoutInstructions = await (await client.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"hi","instructions":null,"max_output_tokens":3}"""))).ReadAsync<JsonElement>();
        var resumable = await (await client.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"go on","background":true,"max_output_tokens":60}"""))).ReadAsync<JsonElement>();
        var id = resumable.GetProperty("id").GetString();
        await Poll.UntilAsync(async () => (await (await client.GetAsync($"/v1/responses/{id}")).ReadAsync<JsonElement>()).GetProperty("output_text").GetString()!.Length > 0, "some output");
        (await client.PostAsync($"/v1/responses/{id}/pause", null)).EnsureSuccessStatusCode();
        (await client.PostAsync($"/v1/responses/{id}/resume", null)).EnsureSuccessStatusCode();
        var finished = await Poll.UntilAsync(
            async () => await (await client.GetAsync($"/v1/responses/{id}")).ReadAsync<JsonElement>(),
            r => r.GetProperty("status").GetString() is "completed" or "incomplete",
            "the resumed response finishes");

        withInstructions.GetProperty("instructions").GetString().ShouldBe("Be brief.");
        withInstructions.GetProperty("tools").GetArrayLength().ShouldBe(0);
        withoutInstructions.GetProperty("instructions").ValueKind.ShouldBe(JsonValueKind.Null);
        finished.GetProperty("holdfast").GetProperty("continuation").GetString().ShouldBe("prefill");
    }

    [Fact(Timeout = 120_000)]
    public async Task Stream_SequenceNumbersAreConsecutive_AndStartingAfterResumesExactly()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "100" });
        using var client = server.Tcp(await server.CreateKeyAsync("alice"));
        var created = await (await client.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"count","background":true,"max_output_tokens":40}"""))).ReadAsync<JsonElement>();
        var id = created.GetProperty("id").GetString();
        await Poll.UntilAsync(async () => (await (await client.GetAsync($"/v1/responses/{id}")).ReadAsync<JsonElement>()).GetProperty("output_text").GetString()!.Length > 0, "some output");
        (await client.PostAsync($"/v1/responses/{id}/pause", null)).EnsureSuccessStatusCode();
        (await client.PostAsync($"/v1/responses/{id}/resume", null)).EnsureSuccessStatusCode();
        var final = await Poll.UntilAsync(
            async () => await (await client.GetAsync($"/v1/responses/{id}")).ReadAsync<JsonElement>(),
            r => r.GetProperty("status").GetString() is "completed" or "incomplete",
            "the response finishes (incomplete: cut at max_output_tokens)");
        var text = final.GetProperty("output_text").GetString()!;

        var all = await ReadStreamAsync(client, $"/v1/responses/{id}?stream=true");

        all.Select(e => e.Number).ShouldBe(Enumerable.Range(0, all.Count).Select(n => (long)n), "0, 1, 2, … with no gap (status events of the log are not numbered)");
        string.Concat(all.Select(e => e.Delta)).ShouldBe(text);
        all[^1].Type.ShouldBeOneOf("response.completed", "response.incomplete");
        foreach (var after in new long[] { 2, 3, 5, all.Count / 2, all.Count - 3, all.Count - 1 })
        {
            var resumed = await ReadStreamAsync(client, $"/v1/responses/{id}?stream=true&starting_after={after}");
            resumed.Select(e => e.Number).ShouldBe(all.Where(e => e.Number > after).Select(e => e.Number), $"after {after}");
            string.Concat(resumed.Select(e => e.Delta)).ShouldBe(string.Concat(all.Where(e => e.Number > after).Select(e => e.Delta)), $"after {after}");
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task Stream_GracefulShutdown_EndsWithServerShuttingDownError_ThenResumesExactly()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "20" });
        var key = await server.CreateKeyAsync("alice");
        string? id;
        var before = new List<(long Number, string Type, string Delta, string? Code)>();
        using (var client = server.Tcp(key))
        {
            var created = await (await client.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"a long one","background":true,"max_output_tokens":60}"""))).ReadAsync<JsonElement>();
            id = created.GetProperty("id").GetString();
            using var response = await client.GetAsync($"/v1/responses/{id}?stream=true", HttpCompletionOption.ResponseHeadersRead);
            await using var body = await response.Content.ReadAsStreamAsync();
            Task? stopping = null;
            await foreach (var e in SseFollower.ReadEventsAsync(body))
            {
                before.Add(Parse(e));
                if (stopping is null && before.Count(x => x.Type == "response.output_text.delta") >= 3)
                {
                    stopping = server.App.StopAsync();
                }
            }

            await stopping.ShouldNotBeNull();
        }

        var error = before[^1];
        error.Type.ShouldBe("error");
        error.Code.ShouldBe("server_shutting_down");
        error.Number.ShouldBe(before[^2].Number, "the error carries the last number sent");
        await server.RestartAsync();
        using var again = server.Tcp(key);
        var after = await ReadStreamAsync(again, $"/v1/responses/{id}?stream=true&starting_after={error.Number}");
        var final = await (await again.GetAsync($"/v1/responses/{id}")).ReadAsync<JsonElement>();

        after[0].Number.ShouldBe(error.Number + 1);
        after[^1].Type.ShouldBeOneOf("response.completed", "response.incomplete");
        (string.Concat(before.Select(e => e.Delta)) + string.Concat(after.Select(e => e.Delta))).ShouldBe(final.GetProperty("output_text").GetString());
    }

    private static async Task<List<(long Number, string Type, string Delta, string? Code)>> ReadStreamAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path, HttpCompletionOption.ResponseHeadersRead);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        await using var body = await response.Content.ReadAsStreamAsync();
        var events = new List<(long, string, string, string?)>();
        await foreach (var e in SseFollower.ReadEventsAsync(body))
        {
            events.Add(Parse(e));
        }

        return events;
    }

    private static (long Number, string Type, string Delta, string? Code) Parse(SseEvent e)
    {
        using var json = JsonDocument.Parse(e.Data);
        var root = json.RootElement;
        return (
            root.GetProperty("sequence_number").GetInt64(),
            root.GetProperty("type").GetString()!,
            root.TryGetProperty("delta", out var delta) ? delta.GetString() ?? string.Empty : string.Empty,
            root.TryGetProperty("code", out var code) ? code.GetString() : null);
    }
}
