using System.Buffers;

namespace Holdfast.Sessions;

/// <summary>
/// Validation of caller-chosen identifiers (bot session ids, idempotency keys, user names): 1–128 characters of
/// letters, digits, '-', '_', '.', ':' and '@', not starting with '.' so an id is always safe in a URL path segment,
/// a file name and a log line.
/// </summary>
public static class SessionIds
{
    public const int MaxLength = 128;

    private static readonly SearchValues<char> Allowed =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@");

    /// <summary>True when <paramref name="id"/> is a valid identifier.</summary>
    public static bool IsValid(string? id) =>
        !string.IsNullOrEmpty(id)
        && id.Length <= MaxLength
        && id[0] != '.'
        && !id.AsSpan().ContainsAnyExcept(Allowed);

    /// <summary>Throws <see cref="InvalidSessionInputException"/> naming the field and the rule when the id is invalid.</summary>
    public static string Validate(string? id, string field = "session_id")
    {
        if (string.IsNullOrEmpty(id))
        {
            throw new InvalidSessionInputException(field, $"'{field}' is required.");
        }

        if (id.Length > MaxLength)
        {
            throw new InvalidSessionInputException(field, $"'{field}' is {id.Length} characters long; the limit is {MaxLength}.");
        }

        if (!IsValid(id))
        {
            throw new InvalidSessionInputException(
                field,
                $"'{field}' may contain only letters, digits and - _ . : @ (and may not start with '.').");
        }

        return id;
    }
}
