using System.Text.Json;
using Holdfast.Generation;
using Holdfast.Sessions;

namespace Holdfast.Server.OpenAi;

/// <summary>
/// Reads OpenAI request bodies. Every field of OpenAI's own API is accepted (SDKs send fields Holdfast has no use for,
/// such as <c>store</c> or <c>user</c>, and those are ignored); a field OpenAI does not know either is refused with
/// a 400 naming it, as OpenAI does ("Unrecognized request argument"); a field Holdfast uses with the wrong type is a
/// 400 naming it.
/// </summary>
internal sealed class OpenAiRequest(JsonElement root)
{
    /// <summary>Request fields of <c>POST /v1/responses</c> in OpenAI's API reference, and <c>seed</c> (a Holdfast extension, as in Chat Completions).</summary>
    public static readonly IReadOnlySet<string> ResponsesFields = new HashSet<string>(StringComparer.Ordinal)
    {
        "background", "conversation", "include", "input", "instructions", "max_output_tokens", "max_tool_calls", "metadata",
        "model", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_retention",
        "reasoning", "safety_identifier", "seed", "service_tier", "store", "stream", "stream_options", "temperature", "text",
        "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user",
    };

    /// <summary>Request fields of <c>POST /v1/chat/completions</c> in OpenAI's API reference.</summary>
    public static readonly IReadOnlySet<string> ChatCompletionsFields = new HashSet<string>(StringComparer.Ordinal)
    {
        "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs", "max_completion_tokens",
        "max_tokens", "messages", "metadata", "modalities", "model", "n", "parallel_tool_calls", "prediction",
        "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
        "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
        "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
    };

    /// <summary>
    /// Parses the body as a JSON object whose fields are all in <paramref name="knownFields"/>; throws
    /// <see cref="JsonException"/> (not JSON) or <see cref="InvalidSessionInputException"/> (not an object, or a
    /// field nobody knows) before anything is created.
    /// </summary>
    public static async Task<OpenAiRequest> ReadAsync(Stream body, IReadOnlySet<string> knownFields, CancellationToken cancellationToken)
    {
        using var document = await JsonDocument.ParseAsync(body, new JsonDocumentOptions { MaxDepth = 32 }, cancellationToken);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidSessionInputException("body", "The request body must be a JSON object.");
        }

        EnsureText(document.RootElement);

        foreach (var property in document.RootElement.EnumerateObject())
        {
            if (!knownFields.Contains(property.Name))
            {
                var name = property.Name.Length <= 40 ? property.Name : property.Name[..40] + "…";
                throw new InvalidSessionInputException(
                    name,
                    $"Unrecognized request argument supplied: '{name}'. Check its spelling (fields are snake_case, as in OpenAI's API).");
            }
        }

        return new OpenAiRequest(document.RootElement.Clone());
    }

    /// <summary>
    /// The parser checks JSON's structure, not the text inside strings: a name or value that is not valid UTF-8 (or an
    /// unpaired <c>\u</c> surrogate escape) would throw only when read. Reads every one now, so it is a 400 up front.
    /// </summary>
    private static void EnsureText(JsonElement element)
    {
        try
        {
            Visit(element);
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidSessionInputException(
                "body",
                "The request body has text that is not valid UTF-8 (or an unpaired \\u surrogate escape); send JSON encoded as UTF-8.",
                ex);
        }

        static void Visit(JsonElement element)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        _ = property.Name;
                        Visit(property.Value);
                    }

                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        Visit(item);
                    }

                    break;
                case JsonValueKind.String:
                    _ = element.GetString();
                    break;
            }
        }
    }

    public string? String(string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw WrongType(name, "a string");
    }

    public bool Bool(string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return false;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(name, "true or false"),
        };
    }

    public double? Double(string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Number ? value.GetDouble() : throw WrongType(name, "a number");
    }

    public long? Long(string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number) ? number : throw WrongType(name, "an integer");
    }

    public int? Int(string name) => Long(name) is { } value
        ? value is >= int.MinValue and <= int.MaxValue ? (int)value : throw WrongType(name, "an integer")
        : null;

    public JsonElement? Element(string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    /// <summary><c>metadata</c>: an object of string values.</summary>
    public Dictionary<string, string>? Metadata()
    {
        if (Element("metadata") is not { } metadata)
        {
            return null;
        }

        if (metadata.ValueKind != JsonValueKind.Object)
        {
            throw WrongType("metadata", "an object of strings");
        }

        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in metadata.EnumerateObject())
        {
            result[property.Name] = property.Value.ValueKind == JsonValueKind.String
                ? property.Value.GetString()!
                : throw WrongType($"metadata.{property.Name}", "a string");
        }

        return result;
    }

    /// <summary><c>stop</c>: a string or an array of strings.</summary>
    public IReadOnlyList<string>? Stop()
    {
        if (Element("stop") is not { } stop)
        {
            return null;
        }

        return stop.ValueKind switch
        {
            JsonValueKind.String => [stop.GetString()!],
            JsonValueKind.Array => stop.EnumerateArray().Select(s => s.ValueKind == JsonValueKind.String ? s.GetString()! : throw WrongType("stop", "a string or an array of strings")).ToList(),
            _ => throw WrongType("stop", "a string or an array of strings"),
        };
    }

    /// <summary>
    /// Messages from <paramref name="name"/>: a string (one user message) or an array of
    /// <c>{role, content}</c> / <c>{type: "message", role, content}</c>, where content is a string or an array of
    /// text parts (<c>input_text</c>, <c>output_text</c>, <c>text</c>).
    /// </summary>
    public List<GenerationMessage> Messages(string name, bool allowString)
    {
        var value = Element(name) ?? throw new InvalidSessionInputException(name, $"'{name}' is required.");
        if (value.ValueKind == JsonValueKind.String && allowString)
        {
            return [new GenerationMessage("user", value.GetString()!)];
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw WrongType(name, allowString ? "a string or an array of messages" : "an array of messages");
        }

        var messages = new List<GenerationMessage>();
        var index = 0;
        foreach (var item in value.EnumerateArray())
        {
            var field = $"{name}[{index++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw WrongType(field, "a message object");
            }

            if (item.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() != "message")
            {
                throw new InvalidSessionInputException(field, $"'{field}' is a '{type.GetString()}' item; this server takes only messages.");
            }

            var role = item.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : throw WrongType($"{field}.role", "a string");
            if (!item.TryGetProperty("content", out var content))
            {
                throw new InvalidSessionInputException($"{field}.content", $"'{field}.content' is required.");
            }

            messages.Add(new GenerationMessage(role, ContentText(content, $"{field}.content")));
        }

        return messages;
    }

    private static string ContentText(JsonElement content, string field)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw WrongType(field, "a string or an array of text parts");
        }

        var text = new System.Text.StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object
                || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String
                || type.GetString() is not ("input_text" or "output_text" or "text")
                || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
            {
                throw new InvalidSessionInputException(field, $"'{field}' may hold only text parts ({{\"type\": \"input_text\", \"text\": \"…\"}}).");
            }

            text.Append(partText.GetString());
        }

        return text.ToString();
    }

    private static InvalidSessionInputException WrongType(string field, string expected) =>
        new(field, $"'{field}' must be {expected}.");
}
