using System.ClientModel;
using System.Net;
using System.Text.Json.Nodes;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Holdfast.TestHelpers.OpenAi;
using OpenAI.Responses;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

#pragma warning disable OPENAI001 // The Responses API surface of the SDK is marked experimental.

/// <summary>
/// The statuses of <c>/v1/responses</c> as OpenAI reports them, checked in the raw JSON and through the official SDK:
/// <c>completed</c> (a request without <c>background</c> waits for it), <c>incomplete</c> with
/// <c>incomplete_details.reason = max_output_tokens</c>, and <c>failed</c> with an error object when the backend fails.
/// </summary>
public sealed class OpenAiStatusTests
{
    [Fact(Timeout = 60_000)]
    public async Task CreateResponse_NotBackground_WaitsAndAnswersCompletedWithOutputText()
    {
        await using var server = await TestServer.StartAsync();
        using var http = server.Tcp(await server.CreateKeyAsync("alice"));

        using var response = await http.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"Answer in full.","max_output_tokens":400,"seed":3}"""));

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        ((string?)json["status"]).ShouldBe("completed");
        ((bool?)json["background"]).ShouldBe(false);
        json["error"].ShouldBeNull();
        json["incomplete_details"].ShouldBeNull();
        var outputText = (string?)json["output_text"];
        outputText.ShouldNotBeNullOrEmpty();
        ((string?)json["output"]![0]!["content"]![0]!["text"]).ShouldBe(outputText);
        var generation = await (await http.GetAsync($"/api/v1/generations/{((string)json["id"]!)["resp_".Length..]}")).ReadAsync<Generation>();
        generation.Status.ShouldBe(GenerationStatus.Completed);
        generation.Output.ShouldBe(outputText);

        // Retrieved later, the raw object carries the same output_text.
        var retrieved = JsonNode.Parse(await http.GetStringAsync($"/v1/responses/{(string)json["id"]!}"))!;
        ((string?)retrieved["output_text"]).ShouldBe(outputText);
        ((string?)retrieved["status"]).ShouldBe("completed");
    }

    [Fact(Timeout = 60_000)]
    public async Task CreateResponse_MaxOutputTokensReached_IsIncompleteWithReasonMaxOutputTokens()
    {
        await using var server = await TestServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        using var http = server.Tcp(key);

        using var response = await http.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"Say a lot.","max_output_tokens":5}"""));

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        ((string?)json["status"]).ShouldBe("incomplete");
        ((string?)json["incomplete_details"]!["reason"]).ShouldBe("max_output_tokens");
        ((int?)json["max_output_tokens"]).ShouldBe(5);
        ((int?)json["usage"]!["output_tokens"]).ShouldBe(5);
        ((string?)json["output_text"]).ShouldNotBeNullOrEmpty("the text up to the limit is kept");

        // The SDK reads it the same way.
        var client = new ResponsesClient(new ApiKeyCredential(key), new ResponsesClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });
        var viaSdk = (await client.GetResponseAsync((string)json["id"]!)).Value;
        viaSdk.Status.ShouldBe(ResponseStatus.Incomplete);
        viaSdk.IncompleteStatusDetails.ShouldNotBeNull().Reason.ShouldBe(ResponseIncompleteStatusReason.MaxOutputTokens);
        viaSdk.GetOutputText().ShouldBe((string?)json["output_text"]);

        // A stream of it closes with response.incomplete.
        using var streamed = await http.PostAsync("/v1/responses", Http.Json("""{"model":"scripted","input":"Say a lot.","max_output_tokens":5,"stream":true}"""));
        await using var body = await streamed.Content.ReadAsStreamAsync();
        var types = new List<string>();
        await foreach (var e in SseFollower.ReadEventsAsync(body))
        {
            types.Add(e.Event);
        }

        types[^1].ShouldBe("response.incomplete");
    }

    [Fact(Timeout = 90_000)]
    public async Task CreateResponse_BackendAnswers500_IsFailedWithErrorObject_SessionResumable()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { Fault = EmulatorFault.Status500 });
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Backends:upstream:BaseUrl"] = emulator.BaseUrl,
            ["Backends:upstream:MaxRetries"] = "0",
            ["Generation:DefaultBackend"] = "upstream",
        });
        var key = await server.CreateKeyAsync("alice");
        using var http = server.Tcp(key);

        // Without background the request waits, and answers the failed response (HTTP 200, like OpenAI).
        using var response = await http.PostAsync("/v1/responses", Http.Json("""{"model":"gpt-test","input":"Fail, please."}"""));

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        ((string?)json["status"]).ShouldBe("failed");
        ((string?)json["error"]!["code"]).ShouldBe("server_error");
        ((string?)json["error"]!["message"]).ShouldNotBeNullOrWhiteSpace();
        ((string?)json["error"]!["message"])!.ShouldContain("500");
        ((string?)json["output_text"]).ShouldBe(string.Empty);
        emulator.Requests.Count.ShouldBe(1, "MaxRetries 0: one request upstream");

        // In the background, through the SDK: it ends failed with the error.
        var client = new ResponsesClient(new ApiKeyCredential(key), new ResponsesClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });
        var created = (await client.CreateResponseAsync(new CreateResponseOptions
        {
            Model = "gpt-test",
            BackgroundModeEnabled = true,
            InputItems = { ResponseItem.CreateUserMessageItem("Fail in the background.") },
        })).Value;
        var failed = await Poll.UntilAsync(async () => (await client.GetResponseAsync(created.Id)).Value, r => r.Status == ResponseStatus.Failed, "the background response fails");
        failed.Error.ShouldNotBeNull().Code.ShouldBe(ResponseErrorCode.ServerError);
        failed.Error.Message.ShouldNotBeNullOrWhiteSpace();

        // The session is kept, failed and resumable, in the native API.
        var generation = await (await http.GetAsync($"/api/v1/generations/{created.Id["resp_".Length..]}")).ReadAsync<Generation>();
        generation.Status.ShouldBe(GenerationStatus.Failed);
        generation.Error.ShouldNotBeNullOrWhiteSpace();
    }
}
