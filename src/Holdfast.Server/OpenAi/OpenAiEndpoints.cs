using System.Text.Json;
using System.Text.Json.Nodes;
using Holdfast.Generation;
using Holdfast.Security;
using Holdfast.Server.Endpoints;
using Holdfast.Server.Metrics;
using Holdfast.Server.Security;
using Holdfast.Server.Streaming;
using Holdfast.Sessions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.Server.OpenAi;

/// <summary>
/// The OpenAI-compatible face under <c>/v1</c>: the Responses API (<c>background</c>, <c>stream</c>, retrieve with
/// <c>stream=true&amp;starting_after=N</c>, cancel; pause/resume as extensions) and Chat Completions (streaming and
/// not). Every call is a durable generation session, visible under <c>/api/v1/generations</c> (response id
/// <c>resp_&lt;generation id&gt;</c>). Streamed <c>sequence_number</c>s derive from the durable log, so resuming with
/// <c>starting_after</c> works across restarts.
/// </summary>
internal static class OpenAiEndpoints
{
    private const string ResponsePrefix = "resp_";
    private const string CompletionPrefix = "chatcmpl-";

    private static readonly JsonSerializerOptions WireJson = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = null };

    public static IEndpointRouteBuilder MapOpenAiApi(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").WithTags("OpenAI-compatible");
        v1.MapPost("/responses", CreateResponseAsync).WithSummary("Creates a response (a durable generation); background and/or stream.");
        v1.MapGet("/responses/{id}", GetResponseAsync).WithSummary("Retrieves a response; with stream=true, streams its events after starting_after.");
        v1.MapPost("/responses/{id}/cancel", (string id, HttpContext context, GenerationSessions sessions, CancellationToken ct) =>
            ControlAsync(id, "cancel", context, sessions, ct)).WithSummary("Cancels a response, keeping its partial output.");
        v1.MapPost("/responses/{id}/pause", (string id, HttpContext context, GenerationSessions sessions, CancellationToken ct) =>
            ControlAsync(id, "pause", context, sessions, ct)).WithSummary("Holdfast extension: pauses a response.");
        v1.MapPost("/responses/{id}/resume", (string id, HttpContext context, GenerationSessions sessions, CancellationToken ct) =>
            ControlAsync(id, "resume", context, sessions, ct)).WithSummary("Holdfast extension: resumes a paused response; it continues its text.");
        v1.MapDelete("/responses/{id}", DeleteResponseAsync).WithSummary("Deletes a response that is not queued or in progress (its generation and log).");
        v1.MapGet("/models", ListModelsAsync).WithSummary("The models this server's backends serve, in OpenAI's list shape.");
        v1.MapPost("/chat/completions", ChatCompletionsAsync).WithSummary("Chat completion (streaming or not), as a durable generation.");
        return app;
    }

    // ---- Responses ---------------------------------------------------------------------------------------------

    private static async Task CreateResponseAsync(HttpContext context, GenerationSessions sessions, GenerationStream stream, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var body = await OpenAiRequest.ReadAsync(context.Request.Body, OpenAiRequest.ResponsesFields, cancellationToken);
        var background = body.Bool("background");
        var streaming = body.Bool("stream");
        var input = body.Messages("input", allowString: true);
        var instructions = body.String("instructions");
        if (instructions is not null)
        {
            input.Insert(0, new GenerationMessage("system", instructions));
        }

        string? previous = null;
        if (body.String("previous_response_id") is { } previousResponse)
        {
            previous = ParseResponseId(previousResponse, "previous_response_id");
            await sessions.GetAsync(previous, GenerationEndpoints.OwnerScope(caller), cancellationToken);
        }

        var metadata = body.Metadata() ?? [];
        metadata["holdfast.api"] = "responses";
        if (instructions is not null)
        {
            // Echoed as sent: the instructions are the first input message of the generation.
            metadata["holdfast.instructions"] = "input[0]";
        }

        if (background)
        {
            metadata["holdfast.background"] = "true";
        }

        var result = await sessions.CreateAsync(
            new CreateGenerationRequest
            {
                Owner = caller.User,
                Model = body.String("model") ?? string.Empty,
                Input = input,
                Parameters = new GenerationParameters
                {
                    Temperature = body.Double("temperature"),
                    TopP = body.Double("top_p"),
                    MaxTokens = body.Int("max_output_tokens"),
                    Seed = body.Long("seed"),
                },
                PreviousSessionId = previous,
                Metadata = metadata,
                IdempotencyKey = IdempotencyKey(context),
            },
            EndpointHelpers.ActorOf(caller),
            cancellationToken);
        var session = result.Session;
        if (streaming)
        {
            await StreamResponseAsync(context, session, caller, -1, stream, sessions, cancellationToken);
            return;
        }

        if (!background)
        {
            session = await WaitSettledAsync(sessions, session.Id, GenerationEndpoints.OwnerScope(caller), context, cancellationToken);
        }

        await WriteJsonAsync(context, ResponseObject(session), cancellationToken);
    }

    private static async Task GetResponseAsync(
        string id,
        bool? stream,
        long? starting_after,
        HttpContext context,
        GenerationSessions sessions,
        GenerationStream relay,
        CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var session = await sessions.GetAsync(ParseResponseId(id, "response_id"), GenerationEndpoints.OwnerScope(caller), cancellationToken);
        if (stream == true)
        {
            if (starting_after is < -1)
            {
                throw new InvalidSessionInputException("starting_after", "'starting_after' must be a sequence number (0 or more).");
            }

            await StreamResponseAsync(context, session, caller, starting_after ?? -1, relay, sessions, cancellationToken);
            return;
        }

        await WriteJsonAsync(context, ResponseObject(session), cancellationToken);
    }

    private static async Task<ContentHttpResult> DeleteResponseAsync(string id, HttpContext context, GenerationSessions sessions, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var generationId = ParseResponseId(id, "response_id");
        var scope = GenerationEndpoints.OwnerScope(caller);
        var session = await sessions.GetAsync(generationId, scope, cancellationToken);
        if (session.Status is GenerationStatus.Queued or GenerationStatus.Running or GenerationStatus.Paused)
        {
            throw new SessionConflictException(
                $"Response '{ResponsePrefix}{generationId}' is {ResponseStatus(session).Status}; cancel it first (POST /v1/responses/{ResponsePrefix}{generationId}/cancel), then delete it.",
                ResponseStatus(session).Status);
        }

        await sessions.DeleteAsync(generationId, EndpointHelpers.ActorOf(caller), scope, cancellationToken);
        var deleted = new JsonObject { ["id"] = ResponsePrefix + generationId, ["object"] = "response.deleted", ["deleted"] = true };
        return TypedResults.Text(deleted.ToJsonString(WireJson), "application/json");
    }

    private static async Task<ContentHttpResult> ListModelsAsync(Holdfast.Generation.Backends.GenerationBackends backends, CancellationToken cancellationToken)
    {
        var data = new JsonArray();
        foreach (var (model, backend) in await backends.ListAllModelsAsync(cancellationToken))
        {
            data.Add(new JsonObject { ["id"] = model, ["object"] = "model", ["created"] = 0, ["owned_by"] = backend });
        }

        return TypedResults.Text(new JsonObject { ["object"] = "list", ["data"] = data }.ToJsonString(WireJson), "application/json");
    }

    private static async Task<ContentHttpResult> ControlAsync(string id, string command, HttpContext context, GenerationSessions sessions, CancellationToken cancellationToken)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        TimeSpan? wait = command == "resume" ? null : TimeSpan.FromSeconds(5);
        var succeeded = false;
        try
        {
            var caller = context.Caller();
            var generationId = ParseResponseId(id, "response_id");
            var scope = GenerationEndpoints.OwnerScope(caller);
            var actor = EndpointHelpers.ActorOf(caller);
            var session = command switch
            {
                "pause" => await sessions.PauseAsync(generationId, actor, scope, wait: wait, cancellationToken: cancellationToken),
                "resume" => await sessions.ResumeAsync(generationId, actor, scope, cancellationToken: cancellationToken),
                _ => await sessions.CancelAsync(generationId, actor, scope, wait: wait, cancellationToken: cancellationToken),
            };
            succeeded = true;
            return TypedResults.Text(ResponseObject(session).ToJsonString(WireJson), "application/json");
        }
        finally
        {
            context.RequestServices.GetRequiredService<ServerMetrics>().RecordControl(
                command, wait is not null, succeeded, System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>
    /// Streams a response's events, numbered consecutively: 0–3 are <c>response.created</c>, <c>response.in_progress</c>,
    /// <c>output_item.added</c>, <c>content_part.added</c>; the n-th chunk of the durable log is delta <c>3+n</c>; the
    /// terminal status closes with the next four. The numbers are a function of the log (counted from its start), so
    /// <c>starting_after</c> resumes exactly, across restarts. When the server shuts down mid-stream, the stream ends
    /// with an <c>error</c> event (code <c>server_shutting_down</c>, the last number sent) and the response stays
    /// resumable from that number.
    /// </summary>
    private static async Task StreamResponseAsync(
        HttpContext context,
        GenerationSession session,
        Principal caller,
        long startingAfter,
        GenerationStream relay,
        GenerationSessions sessions,
        CancellationToken cancellationToken)
    {
        var scope = GenerationEndpoints.OwnerScope(caller);
        var (afterLog, chunksBefore) = await LocateAsync(sessions, session.Id, scope, startingAfter, cancellationToken);
        await sessions.CheckFollowFromAsync(session.Id, afterLog, cancellationToken);
        var sse = new SseWriter(context.Response);
        await sse.StartAsync(cancellationToken);
        var responseId = ResponsePrefix + session.Id;
        var itemId = "msg_" + session.Id;
        var lastNumber = startingAfter;
        var closed = false;

        async Task EmitAsync(string type, long number, JsonObject payload)
        {
            if (number <= startingAfter)
            {
                return;
            }

            payload["type"] = type;
            payload["sequence_number"] = number;
            await sse.WriteEventAsync(type, payload, null, cancellationToken, WireJson);
            lastNumber = number;
        }

        var snapshot = ResponseObject(session with { Output = string.Empty }, includeOutput: false);
        await EmitAsync("response.created", 0, new JsonObject { ["response"] = snapshot.DeepClone() });
        await EmitAsync("response.in_progress", 1, new JsonObject { ["response"] = InProgress(snapshot) });
        await EmitAsync("response.output_item.added", 2, new JsonObject
        {
            ["output_index"] = 0,
            ["item"] = MessageItem(itemId, "in_progress", string.Empty, includeContent: false),
        });
        await EmitAsync("response.content_part.added", 3, new JsonObject
        {
            ["item_id"] = itemId,
            ["output_index"] = 0,
            ["content_index"] = 0,
            ["part"] = TextPart(string.Empty),
        });
        await sse.FlushAsync(cancellationToken);

        var chunks = chunksBefore;
        await relay.RelayAsync(
            session.Id,
            sessions.FollowAsync(session.Id, scope, afterLog, cancellationToken),
            async e =>
            {
                if (e.Type == GenerationLogEventType.Chunk)
                {
                    var number = 3 + ++chunks;
                    await EmitAsync("response.output_text.delta", number, new JsonObject
                    {
                        ["item_id"] = itemId,
                        ["output_index"] = 0,
                        ["content_index"] = 0,
                        ["delta"] = e.Text ?? string.Empty,
                        ["logprobs"] = new JsonArray(),
                    });
                }
                else if (e.IsTerminal)
                {
                    var number = 4 + chunks;
                    var final = await sessions.GetAsync(session.Id, scope, cancellationToken);
                    await EmitAsync("response.output_text.done", number, new JsonObject
                    {
                        ["item_id"] = itemId,
                        ["output_index"] = 0,
                        ["content_index"] = 0,
                        ["text"] = final.Output,
                        ["logprobs"] = new JsonArray(),
                    });
                    await EmitAsync("response.content_part.done", number + 1, new JsonObject
                    {
                        ["item_id"] = itemId,
                        ["output_index"] = 0,
                        ["content_index"] = 0,
                        ["part"] = TextPart(final.Output),
                    });
                    await EmitAsync("response.output_item.done", number + 2, new JsonObject
                    {
                        ["output_index"] = 0,
                        ["item"] = MessageItem(itemId, "completed", final.Output, includeContent: true),
                    });
                    var response = ResponseObject(final);
                    var closing = (string?)response["status"] switch
                    {
                        "completed" => "response.completed",
                        "failed" => "response.failed",
                        _ => "response.incomplete",
                    };
                    await EmitAsync(closing, number + 3, new JsonObject { ["response"] = response });
                    await sse.FlushAsync(cancellationToken);
                    closed = true;
                    return false;
                }

                return true;
            },
            () => sse.HeartbeatAsync(cancellationToken),
            () => sse.FlushAsync(cancellationToken),
            cancellationToken);

        var stopping = context.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        if (!closed && stopping.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // Not a durable event: it carries the last number sent, so resuming from the highest number seen is exact.
            var error = new JsonObject
            {
                ["type"] = "error",
                ["code"] = "server_shutting_down",
                ["message"] = $"The server is shutting down; the response is kept. Resume with GET /v1/responses/{responseId}?stream=true&starting_after={Math.Max(lastNumber, -1)} once it is back.",
                ["param"] = null,
                ["sequence_number"] = Math.Max(lastNumber, 0),
            };
            await sse.WriteEventAsync("error", error, null, cancellationToken, WireJson);
            await sse.FlushAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Where a stream resumed after number <paramref name="startingAfter"/> picks up: the log seq of the chunk that
    /// number was (delta <c>3+n</c> is the n-th chunk), and how many chunks came before. Reads the log from its start.
    /// </summary>
    private static async Task<(long AfterLog, long ChunksBefore)> LocateAsync(
        GenerationSessions sessions, string id, string? scope, long startingAfter, CancellationToken cancellationToken)
    {
        var seen = startingAfter - 3;
        if (seen <= 0)
        {
            return (0, 0);
        }

        long count = 0, lastChunk = 0, after = 0;
        while (true)
        {
            var page = await sessions.ReadLogAsync(id, scope, after, 5000, cancellationToken);
            if (page.Count == 0)
            {
                return (lastChunk, count);
            }

            foreach (var e in page)
            {
                if (e.Type == GenerationLogEventType.Chunk)
                {
                    count++;
                    lastChunk = e.Seq;
                    if (count == seen)
                    {
                        return (e.Seq, count);
                    }
                }
            }

            after = page[^1].Seq;
        }
    }

    /// <summary>The Responses API object for a session.</summary>
    internal static JsonObject ResponseObject(GenerationSession s, bool includeOutput = true)
    {
        var (status, incomplete) = ResponseStatus(s);
        var output = new JsonArray();
        if (includeOutput && (s.Output.Length > 0 || GenerationMapping.IsSettled(s)))
        {
            output.Add(MessageItem("msg_" + s.Id, status == "in_progress" || status == "queued" ? "in_progress" : "completed", s.Output, includeContent: true));
        }

        var metadata = new JsonObject();
        foreach (var (key, value) in s.Metadata ?? new Dictionary<string, string>())
        {
            if (!key.StartsWith("holdfast.", StringComparison.Ordinal))
            {
                metadata[key] = value;
            }
        }

        var background = s.Metadata?.GetValueOrDefault("holdfast.background") == "true";
        return new JsonObject
        {
            ["id"] = ResponsePrefix + s.Id,
            ["object"] = "response",
            ["created_at"] = s.CreatedAt.ToUnixTimeSeconds(),
            ["status"] = status,
            ["background"] = background,
            ["error"] = s.Status == GenerationStatus.Failed ? new JsonObject { ["code"] = "server_error", ["message"] = s.Error ?? "The generation failed." } : null,
            ["incomplete_details"] = incomplete is null ? null : new JsonObject { ["reason"] = incomplete },
            ["instructions"] = s.Metadata?.GetValueOrDefault("holdfast.instructions") == "input[0]" && s.Input.Count > 0 ? s.Input[0].Content : null,
            ["max_output_tokens"] = s.Parameters.MaxTokens,
            ["model"] = s.Model,
            ["output"] = output,
            ["output_text"] = includeOutput ? s.Output : string.Empty,
            ["parallel_tool_calls"] = false,
            ["previous_response_id"] = s.PreviousSessionId is null ? null : ResponsePrefix + s.PreviousSessionId,
            ["store"] = true,
            ["temperature"] = s.Parameters.Temperature,
            ["top_p"] = s.Parameters.TopP,
            ["text"] = new JsonObject { ["format"] = new JsonObject { ["type"] = "text" } },
            ["tool_choice"] = "auto",
            ["tools"] = new JsonArray(),
            ["truncation"] = "disabled",
            ["usage"] = new JsonObject
            {
                ["input_tokens"] = s.Usage.InputTokens ?? 0,
                ["input_tokens_details"] = new JsonObject { ["cached_tokens"] = 0 },
                ["output_tokens"] = s.Usage.OutputTokens,
                ["output_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0 },
                ["total_tokens"] = (s.Usage.InputTokens ?? 0) + s.Usage.OutputTokens,
            },
            ["metadata"] = metadata,
            ["holdfast"] = new JsonObject
            {
                ["generation_id"] = s.Id,
                ["status"] = GenerationMapping.ToWire(s.Status).ToString().ToLowerInvariant(),
                ["pause_reason"] = s.PauseReason,
                ["last_seq"] = s.LastSeq,
                ["continuation"] = s.Continuation,
            },
        };
    }

    private static (string Status, string? Incomplete) ResponseStatus(GenerationSession s) => s.Status switch
    {
        GenerationStatus.Queued => ("queued", null),
        GenerationStatus.Running or GenerationStatus.Paused => ("in_progress", null),
        GenerationStatus.Completed when s.FinishReason == "length" => ("incomplete", "max_output_tokens"),
        GenerationStatus.Completed => ("completed", null),
        GenerationStatus.Cancelled => ("cancelled", null),
        _ => ("failed", null),
    };

    private static JsonObject InProgress(JsonObject snapshot)
    {
        var copy = (JsonObject)snapshot.DeepClone();
        copy["status"] = "in_progress";
        return copy;
    }

    private static JsonObject MessageItem(string id, string status, string text, bool includeContent) => new()
    {
        ["type"] = "message",
        ["id"] = id,
        ["status"] = status,
        ["role"] = "assistant",
        ["content"] = includeContent ? new JsonArray(TextPart(text)) : new JsonArray(),
    };

    private static JsonObject TextPart(string text) => new()
    {
        ["type"] = "output_text",
        ["text"] = text,
        ["annotations"] = new JsonArray(),
        ["logprobs"] = new JsonArray(),
    };

    // ---- Chat Completions --------------------------------------------------------------------------------------

    private static async Task ChatCompletionsAsync(HttpContext context, GenerationSessions sessions, GenerationStream relay, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var scope = GenerationEndpoints.OwnerScope(caller);
        var body = await OpenAiRequest.ReadAsync(context.Request.Body, OpenAiRequest.ChatCompletionsFields, cancellationToken);
        var streaming = body.Bool("stream");
        var includeUsage = body.Element("stream_options") is { ValueKind: JsonValueKind.Object } options
            && options.TryGetProperty("include_usage", out var usage) && usage.ValueKind == JsonValueKind.True;
        var metadata = body.Metadata() ?? [];
        metadata["holdfast.api"] = "chat.completions";
        var result = await sessions.CreateAsync(
            new CreateGenerationRequest
            {
                Owner = caller.User,
                Model = body.String("model") ?? string.Empty,
                Input = body.Messages("messages", allowString: false),
                Parameters = new GenerationParameters
                {
                    Temperature = body.Double("temperature"),
                    TopP = body.Double("top_p"),
                    MaxTokens = body.Int("max_completion_tokens") ?? body.Int("max_tokens"),
                    Seed = body.Long("seed"),
                    Stop = body.Stop(),
                },
                Metadata = metadata,
                IdempotencyKey = IdempotencyKey(context),
            },
            EndpointHelpers.ActorOf(caller),
            cancellationToken);
        var session = result.Session;
        var id = CompletionPrefix + session.Id;
        var created = session.CreatedAt.ToUnixTimeSeconds();
        if (!streaming)
        {
            var final = await WaitSettledAsync(sessions, session.Id, scope, context, cancellationToken);
            if (final.Status == GenerationStatus.Failed)
            {
                throw new BackendFailedException(final);
            }

            if (!GenerationMapping.IsSettled(final))
            {
                throw new ServerStoppingException(final.Id);
            }

            await WriteJsonAsync(
                context,
                new JsonObject
                {
                    ["id"] = id,
                    ["object"] = "chat.completion",
                    ["created"] = created,
                    ["model"] = final.Model,
                    ["choices"] = new JsonArray(new JsonObject
                    {
                        ["index"] = 0,
                        ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = final.Output, ["refusal"] = null },
                        ["finish_reason"] = FinishReason(final),
                        ["logprobs"] = null,
                    }),
                    ["usage"] = ChatUsage(final),
                    ["holdfast"] = new JsonObject { ["generation_id"] = final.Id },
                },
                cancellationToken);
            return;
        }

        var sse = new SseWriter(context.Response);
        await sse.StartAsync(cancellationToken);
        JsonObject Chunk(JsonObject delta, string? finishReason) => new()
        {
            ["id"] = id,
            ["object"] = "chat.completion.chunk",
            ["created"] = created,
            ["model"] = session.Model,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finishReason, ["logprobs"] = null }),
        };

        await sse.WriteEventAsync(string.Empty, Chunk(new JsonObject { ["role"] = "assistant", ["content"] = string.Empty }, null), null, cancellationToken, WireJson);
        await sse.FlushAsync(cancellationToken);
        await relay.RelayAsync(
            session.Id,
            sessions.FollowAsync(session.Id, scope, 0, cancellationToken),
            async e =>
            {
                if (e.Type == GenerationLogEventType.Chunk)
                {
                    await sse.WriteEventAsync(string.Empty, Chunk(new JsonObject { ["content"] = e.Text ?? string.Empty }, null), null, cancellationToken, WireJson);
                }
                else if (e.IsTerminal)
                {
                    var final = await sessions.GetAsync(session.Id, scope, cancellationToken);
                    if (final.Status == GenerationStatus.Failed)
                    {
                        await sse.WriteEventAsync(string.Empty, new JsonObject { ["error"] = new JsonObject { ["message"] = final.Error ?? "The generation failed.", ["type"] = "server_error" } }, null, cancellationToken, WireJson);
                    }
                    else
                    {
                        await sse.WriteEventAsync(string.Empty, Chunk(new JsonObject(), FinishReason(final)), null, cancellationToken, WireJson);
                        if (includeUsage)
                        {
                            var usageChunk = Chunk(new JsonObject(), null);
                            usageChunk["choices"] = new JsonArray();
                            usageChunk["usage"] = ChatUsage(final);
                            await sse.WriteEventAsync(string.Empty, usageChunk, null, cancellationToken, WireJson);
                        }
                    }

                    await sse.WriteDataAsync("[DONE]", cancellationToken);
                    await sse.FlushAsync(cancellationToken);
                    return false;
                }

                return true;
            },
            () => sse.HeartbeatAsync(cancellationToken),
            () => sse.FlushAsync(cancellationToken),
            cancellationToken);
    }

    private static string FinishReason(GenerationSession s) => s.FinishReason == "length" ? "length" : "stop";

    private static JsonObject ChatUsage(GenerationSession s) => new()
    {
        ["prompt_tokens"] = s.Usage.InputTokens ?? 0,
        ["completion_tokens"] = s.Usage.OutputTokens,
        ["total_tokens"] = (s.Usage.InputTokens ?? 0) + s.Usage.OutputTokens,
    };

    // ---- shared ------------------------------------------------------------------------------------------------

    /// <summary>
    /// Waits until the session settles, then returns it. When the server starts shutting down meanwhile it stops
    /// waiting and returns the session as it is (the runner keeps it for the next start), so a waiting request never
    /// holds up the shutdown.
    /// </summary>
    private static async Task<GenerationSession> WaitSettledAsync(GenerationSessions sessions, string id, string? scope, HttpContext context, CancellationToken cancellationToken)
    {
        var stopping = context.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stopping);
        try
        {
            await foreach (var e in sessions.FollowAsync(id, scope, 0, wait.Token))
            {
                if (e.IsTerminal)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // Shutting down: answer with what is stored now.
        }

        return await sessions.GetAsync(id, scope, cancellationToken);
    }

    private static string? IdempotencyKey(HttpContext context)
    {
        string? key = context.Request.Headers[GenerationEndpoints.IdempotencyHeader];
        return key is null ? null : EndpointHelpers.ValidId(key, "Idempotency-Key");
    }

    private static string ParseResponseId(string id, string field)
    {
        var raw = id.StartsWith(ResponsePrefix, StringComparison.Ordinal) ? id[ResponsePrefix.Length..] : id;
        return EndpointHelpers.ValidId(raw, field);
    }

    private static Task WriteJsonAsync(HttpContext context, JsonObject body, CancellationToken cancellationToken)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json; charset=utf-8";
        return context.Response.WriteAsync(body.ToJsonString(WireJson), cancellationToken);
    }
}

/// <summary>A chat completion whose generation failed upstream; answered 502 with the session id to resume it.</summary>
internal sealed class BackendFailedException(GenerationSession session)
    : HoldfastException($"The backend failed: {session.Error ?? "unknown error"} The partial output is kept in generation '{session.Id}'; resume it with POST /api/v1/generations/{session.Id}/resume.")
{
    public string GenerationId { get; } = session.Id;
}

/// <summary>A chat completion still running when the server began to shut down; answered 503 with the session to read later.</summary>
internal sealed class ServerStoppingException(string generationId)
    : HoldfastException($"The server is shutting down before the completion finished. Generation '{generationId}' is kept and continues when the server is back; read it at GET /api/v1/generations/{generationId}.")
{
    public string GenerationId { get; } = generationId;
}
