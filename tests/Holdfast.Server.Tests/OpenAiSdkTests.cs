using System.ClientModel;
using System.Net;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Responses;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

#pragma warning disable OPENAI001 // The Responses API surface of the SDK is marked experimental.

/// <summary>The official OpenAI .NET SDK against Holdfast's /v1: every call is a durable, visible session.</summary>
public sealed class OpenAiSdkTests
{
    private static OpenAIClientOptions Options(TestServer server) => new() { Endpoint = new Uri(server.BaseAddress, "/v1"), NetworkTimeout = TimeSpan.FromSeconds(60) };

    [Fact(Timeout = 120_000)]
    public async Task Responses_BackgroundCreated_Streamed_ResumedWithStartingAfter_TextComplete()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "50" });
        var key = await server.CreateKeyAsync("alice");
        var client = new ResponsesClient(new ApiKeyCredential(key), new ResponsesClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });

        var created = (await client.CreateResponseAsync(new CreateResponseOptions
        {
            Model = "scripted",
            BackgroundModeEnabled = true,
            InputItems = { ResponseItem.CreateUserMessageItem("Write a long poem about durable sessions.") },
        })).Value;
        created.Status.ShouldBeOneOf(ResponseStatus.Queued, ResponseStatus.InProgress);
        created.Id.ShouldStartWith("resp_");

        // Visible as a generation session in the native API.
        using var native = server.Tcp(key);
        var generation = await (await native.GetAsync($"/api/v1/generations/{created.Id["resp_".Length..]}")).ReadAsync<Generation>();
        generation.Owner.ShouldBe("alice");

        var numbers = new List<int>();
        var text = new System.Text.StringBuilder();
        var deltas = 0;
        await foreach (var update in await client.GetResponseStreamingAsync(new GetResponseOptions(created.Id) { StreamingEnabled = true }))
        {
            numbers.Add(update.SequenceNumber);
            if (update is StreamingResponseOutputTextDeltaUpdate delta)
            {
                text.Append(delta.Delta);
                if (++deltas == 5)
                {
                    break;
                }
            }
        }

        ResponseResult? completed = null;
        await foreach (var update in await client.GetResponseStreamingAsync(new GetResponseOptions(created.Id) { StreamingEnabled = true, StartingAfter = numbers[^1] }))
        {
            numbers.Add(update.SequenceNumber);
            switch (update)
            {
                case StreamingResponseOutputTextDeltaUpdate delta:
                    text.Append(delta.Delta);
                    break;
                case StreamingResponseCompletedUpdate done:
                    completed = done.Response;
                    break;
            }
        }

        numbers.ShouldBe(numbers.Distinct().Order().ToList(), "sequence numbers strictly increase, none repeated after resuming");
        completed.ShouldNotBeNull().Status.ShouldBe(ResponseStatus.Completed);
        var final = (await client.GetResponseAsync(created.Id)).Value;
        final.Status.ShouldBe(ResponseStatus.Completed);
        final.GetOutputText().ShouldNotBeNullOrEmpty();
        text.ToString().ShouldBe(final.GetOutputText());
    }

    [Fact(Timeout = 120_000)]
    public async Task Responses_StreamedThenCancelled_StatusCancelledWithPartialOutput()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "20" });
        var key = await server.CreateKeyAsync("alice");
        var client = new ResponsesClient(new ApiKeyCredential(key), new ResponsesClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });

        string? id = null;
        var deltas = 0;
        await foreach (var update in await client.CreateResponseStreamingAsync(new CreateResponseOptions
        {
            Model = "scripted",
            BackgroundModeEnabled = true,
            StreamingEnabled = true,
            InputItems = { ResponseItem.CreateUserMessageItem("Count slowly.") },
        }))
        {
            if (update is StreamingResponseCreatedUpdate createdUpdate)
            {
                id = createdUpdate.Response.Id;
            }

            if (update is StreamingResponseOutputTextDeltaUpdate && ++deltas == 3)
            {
                break;
            }
        }

        id.ShouldNotBeNull();
        var cancelled = (await client.CancelResponseAsync(id)).Value;

        cancelled.Status.ShouldBe(ResponseStatus.Cancelled);
        var after = (await client.GetResponseAsync(id)).Value;
        after.Status.ShouldBe(ResponseStatus.Cancelled);
        after.GetOutputText().ShouldNotBeNullOrEmpty();
    }

    [Fact(Timeout = 120_000)]
    public async Task Responses_PauseAndResumeExtensions_ContinueToCompletion()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "30" });
        var key = await server.CreateKeyAsync("alice");
        var client = new ResponsesClient(new ApiKeyCredential(key), new ResponsesClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });
        var created = (await client.CreateResponseAsync(new CreateResponseOptions
        {
            Model = "scripted",
            BackgroundModeEnabled = true,
            InputItems = { ResponseItem.CreateUserMessageItem("Pause me.") },
        })).Value;
        using var http = server.Tcp(key);

        using var paused = await http.PostAsync($"/v1/responses/{created.Id}/pause", null);
        paused.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await paused.Content.ReadAsStringAsync()).ShouldContain("\"paused\"");
        (await http.PostAsync($"/v1/responses/{created.Id}/resume", null)).StatusCode.ShouldBe(HttpStatusCode.OK);

        var done = await Poll.UntilAsync(async () => (await client.GetResponseAsync(created.Id)).Value, r => r.Status == ResponseStatus.Completed, "the resumed response completes", TimeSpan.FromSeconds(60));
        done.GetOutputText().ShouldNotBeNullOrEmpty();
        var metrics = await http.GetStringAsync("/metrics");
        metrics.ShouldContain("holdfast_control_duration_milliseconds_count{command=\"pause\",outcome=\"ok\",wait=\"true\"} 1");
        metrics.ShouldContain("holdfast_control_duration_milliseconds_count{command=\"resume\",outcome=\"ok\",wait=\"false\"} 1");
    }

    [Fact(Timeout = 120_000)]
    public async Task ChatCompletions_StreamedAndNot_AreDurableSessions()
    {
        await using var server = await TestServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        var chat = new ChatClient("scripted", new ApiKeyCredential(key), Options(server));

        var streamed = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Stream to me.")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }

            finish ??= update.FinishReason;
        }

        ChatCompletion whole = await chat.CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("Answer at once.")]);

        finish.ShouldNotBeNull();
        streamed.ToString().ShouldNotBeNullOrEmpty();
        whole.Content[0].Text.ShouldNotBeNullOrEmpty();
        using var native = server.Tcp(key);
        var sessions = await (await native.GetAsync("/api/v1/generations?status=completed")).ReadAsync<ItemPage<Generation>>();
        sessions.Items.Count.ShouldBe(2);
        sessions.Items.Select(g => g.Output).ShouldContain(streamed.ToString());
        sessions.Items.Select(g => g.Output).ShouldContain(whole.Content[0].Text);
    }

    [Fact(Timeout = 60_000)]
    public async Task OpenAi_BadRequests_AreProblemsWithOpenAiErrorObject()
    {
        await using var server = await TestServer.StartAsync();
        using var http = server.Tcp(await server.CreateKeyAsync("alice"));

        foreach (var body in new[] { "{", "[]", """{"model":"scripted","input":42}""", """{"model":"scripted","input":"x","temperature":"hot"}""", """{"model":"scripted"}""" })
        {
            using var response = await http.PostAsync("/v1/responses", Http.Json(body));
            await response.ShouldBe4xxProblemAsync();
            (await response.Content.ReadAsStringAsync()).ShouldContain("\"error\"");
        }

        await (await http.GetAsync("/v1/responses/resp_nope")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        (await (await http.GetAsync("/api/v1/generations")).ReadAsync<ItemPage<Generation>>()).Items.ShouldBeEmpty();
    }
}
