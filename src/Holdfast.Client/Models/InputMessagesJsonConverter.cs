using System.Text.Json;
using System.Text.Json.Serialization;

namespace Holdfast.Client.Models;

/// <summary>Reads <c>input</c> as either a string (one user message) or an array of <c>{role, content}</c>; writes the array.</summary>
public sealed class InputMessagesJsonConverter : JsonConverter<IReadOnlyList<InputMessage>>
{
    public override IReadOnlyList<InputMessage>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return [new InputMessage("user", reader.GetString()!)];
        }

        if (reader.TokenType == JsonTokenType.StartArray)
        {
            return JsonSerializer.Deserialize<List<InputMessage>>(ref reader, options);
        }

        throw new JsonException("'input' must be a string or an array of {role, content} messages.");
    }

    public override void Write(Utf8JsonWriter writer, IReadOnlyList<InputMessage> value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        JsonSerializer.Serialize(writer, value.ToList(), options);
    }
}
