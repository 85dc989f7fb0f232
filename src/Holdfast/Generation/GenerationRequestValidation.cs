using System.Globalization;
using Holdfast.Sessions;

namespace Holdfast.Generation;

/// <summary>Validation of a start request, before anything is stored: every refusal names the field and says why.</summary>
internal static class GenerationRequestValidation
{
    private const int MaxMessages = 1_000;
    private const int MaxMetadataEntries = 16;

    /// <summary>Throws <see cref="InvalidSessionInputException"/> for the first problem of <paramref name="request"/>.</summary>
    public static void Validate(CreateGenerationRequest request, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(options);
        SessionIds.Validate(request.Owner, "owner");
        if (string.IsNullOrWhiteSpace(request.Model) || request.Model.Length > 200)
        {
            throw new InvalidSessionInputException("model", "'model' is required (at most 200 characters), e.g. 'llama3.2', or 'scripted' for the deterministic test backend.");
        }

        if (request.Input is null || request.Input.Count == 0)
        {
            throw new InvalidSessionInputException("input", "'input' needs at least one message.");
        }

        if (request.Input.Count > MaxMessages)
        {
            throw new InvalidSessionInputException("input", $"'input' has {request.Input.Count.ToString(CultureInfo.InvariantCulture)} messages; the limit is {MaxMessages.ToString(CultureInfo.InvariantCulture)}.");
        }

        long characters = 0;
        for (var i = 0; i < request.Input.Count; i++)
        {
            var message = request.Input[i];
            if (message is null || message.Role is not ("system" or "developer" or "user" or "assistant"))
            {
                throw new InvalidSessionInputException($"input[{i}].role", $"'input[{i}].role' must be system, developer, user or assistant.");
            }

            if (message.Content is null)
            {
                throw new InvalidSessionInputException($"input[{i}].content", $"'input[{i}].content' is required.");
            }

            characters += message.Content.Length;
        }

        if (characters > options.MaxInputCharacters)
        {
            throw new InvalidSessionInputException("input", $"'input' has {characters.ToString(CultureInfo.InvariantCulture)} characters; the limit is {options.MaxInputCharacters.ToString(CultureInfo.InvariantCulture)} (Generation:MaxInputCharacters).");
        }

        var p = request.Parameters;
        if (p is not null)
        {
            if (p.Temperature is < 0 or > 2 || (p.Temperature is { } t && double.IsNaN(t)))
            {
                throw new InvalidSessionInputException("parameters.temperature", "'temperature' must be between 0 and 2.");
            }

            if (p.TopP is < 0 or > 1 || (p.TopP is { } tp && double.IsNaN(tp)))
            {
                throw new InvalidSessionInputException("parameters.top_p", "'top_p' must be between 0 and 1.");
            }

            if (p.MaxTokens is < 1 or > 1_000_000)
            {
                throw new InvalidSessionInputException("parameters.max_tokens", "'max_tokens' must be between 1 and 1000000.");
            }

            if (p.Stop is { } stop && (stop.Count > 8 || stop.Any(s => string.IsNullOrEmpty(s) || s.Length > 100)))
            {
                throw new InvalidSessionInputException("parameters.stop", "'stop' takes at most 8 non-empty strings of at most 100 characters.");
            }
        }

        if (request.Metadata is { } metadata && (metadata.Count > MaxMetadataEntries || metadata.Any(kv => kv.Key.Length is 0 or > 64 || kv.Value is null || kv.Value.Length > 512)))
        {
            throw new InvalidSessionInputException("metadata", $"'metadata' takes at most {MaxMetadataEntries} entries, keys of 1–64 and values of at most 512 characters.");
        }

        if (request.IdempotencyKey is not null)
        {
            SessionIds.Validate(request.IdempotencyKey, "idempotency_key");
        }

        if (request.PreviousSessionId is not null)
        {
            SessionIds.Validate(request.PreviousSessionId, "previous_session_id");
        }
    }
}
