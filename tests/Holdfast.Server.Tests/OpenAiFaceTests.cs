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
}
