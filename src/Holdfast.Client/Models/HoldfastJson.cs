using System.Text.Json;
using System.Text.Json.Serialization;

namespace Holdfast.Client.Models;

/// <summary>
/// The JSON settings of the Holdfast wire format: snake_case property names, enums as lower-case strings, nulls
/// omitted, ISO-8601 timestamps. Server and client both use these, so a DTO means the same on both sides.
/// </summary>
public static class HoldfastJson
{
    /// <summary>Shared, read-only options (tolerant of unknown fields, for reading responses from newer servers).</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    /// <summary>Applies the Holdfast wire settings to <paramref name="options"/> (used by the server for its own options).</summary>
    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.DictionaryKeyPolicy = null;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.PropertyNameCaseInsensitive = false;
        options.NumberHandling = JsonNumberHandling.Strict;
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
        return options;
    }

    private static JsonSerializerOptions Create()
    {
        var options = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
