using System.Globalization;
using System.Text;
using Holdfast.Sessions;

namespace Holdfast.Bots;

/// <summary>
/// Size limits of what a bot session stores. A request over a limit is rejected with
/// <see cref="InvalidSessionInputException"/> naming the limit, and nothing is changed.
/// </summary>
public static class BotLimits
{
    /// <summary>Largest message text, in UTF-8 bytes (64 KiB).</summary>
    public const int MaxMessageBytes = 64 * 1024;

    /// <summary>
    /// Largest QR payload, in UTF-8 bytes: the most one QR code holds (2,953 bytes: version 40, low error correction,
    /// byte mode). Payloads up to 2,331 bytes are drawn with medium error correction, larger ones with low.
    /// </summary>
    public const int MaxQrBytes = 2953;

    /// <summary>Largest connection detail, in characters.</summary>
    public const int MaxConnectionDetailLength = 1024;

    /// <summary>Largest login (auth) state blob, in bytes (1 MiB).</summary>
    public const int MaxAuthStateBytes = 1024 * 1024;

    /// <summary>Largest bot type name, in characters.</summary>
    public const int MaxBotTypeLength = 64;

    /// <summary>Largest page size of a list.</summary>
    public const int MaxPageSize = 1000;

    /// <summary>Largest value of one per-key login state entry (<c>auth-keys</c>), in UTF-8 bytes of its JSON (256 KiB).</summary>
    public const int MaxAuthKeyValueBytes = 256 * 1024;

    /// <summary>Most per-key entries read or written by one request.</summary>
    public const int MaxAuthKeysPerRequest = 10_000;

    /// <summary>Largest key type name; letters, digits and <c>- _ . :</c>.</summary>
    public const int MaxAuthKeyTypeLength = 64;

    /// <summary>Largest key id, in characters (no control characters; no comma, which separates ids in a query).</summary>
    public const int MaxAuthKeyIdLength = 512;

    internal static void ValidateAuthKey(string? keyType, string? keyId)
    {
        if (string.IsNullOrEmpty(keyType) || keyType.Length > MaxAuthKeyTypeLength
            || !keyType.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':'))
        {
            throw new InvalidSessionInputException(
                "type",
                string.Create(CultureInfo.InvariantCulture, $"A key type is 1 to {MaxAuthKeyTypeLength} letters, digits or '- _ . :'."));
        }

        if (string.IsNullOrEmpty(keyId) || keyId.Length > MaxAuthKeyIdLength || keyId.Any(c => char.IsControl(c) || c == ','))
        {
            throw new InvalidSessionInputException(
                "ids",
                string.Create(CultureInfo.InvariantCulture, $"A key id is 1 to {MaxAuthKeyIdLength} characters without commas or control characters."));
        }
    }

    internal static void ValidateAuthKeyCount(int count)
    {
        if (count > MaxAuthKeysPerRequest)
        {
            throw new InvalidSessionInputException(
                "ids",
                string.Create(CultureInfo.InvariantCulture, $"{count} keys in one request; the limit is {MaxAuthKeysPerRequest}."));
        }
    }

    internal static void ValidateAuthKeyValue(int bytes)
    {
        if (bytes > MaxAuthKeyValueBytes)
        {
            throw new InvalidSessionInputException(
                "value",
                string.Create(CultureInfo.InvariantCulture, $"A key's value is {bytes} bytes; the limit is {MaxAuthKeyValueBytes} bytes (256 KiB)."));
        }
    }

    internal static string ValidateMessage(string? text)
    {
        if (text is null)
        {
            throw new InvalidSessionInputException("text", "'text' is required.");
        }

        var bytes = Encoding.UTF8.GetByteCount(text);
        if (bytes > MaxMessageBytes)
        {
            throw new InvalidSessionInputException(
                "text",
                string.Create(CultureInfo.InvariantCulture, $"The message is {bytes} bytes (UTF-8); the limit is {MaxMessageBytes} bytes (64 KiB)."));
        }

        return text;
    }

    internal static string? ValidateQr(string? qrData)
    {
        if (qrData is null)
        {
            return null;
        }

        if (qrData.Length == 0)
        {
            throw new InvalidSessionInputException("qr_data", "'qr_data' is empty; send null to clear the QR code.");
        }

        var bytes = Encoding.UTF8.GetByteCount(qrData);
        if (bytes > MaxQrBytes || (bytes > BotQrCodes.AlwaysFitsBytes && !BotQrCodes.Fits(qrData)))
        {
            // Checked when the payload is stored, so a stored QR code can always be drawn.
            throw new InvalidSessionInputException(
                "qr_data",
                string.Create(CultureInfo.InvariantCulture, $"The QR payload is {bytes} bytes (UTF-8); a QR code holds at most {MaxQrBytes} bytes (less when the text is not plain ASCII), so that is the limit."));
        }

        return qrData;
    }

    /// <summary>The readable connection detail of a report: <c>state</c>, <c>state: reason</c>, <c>state: reason (code)</c>.</summary>
    internal static string ConnectionDetail(string state, string? reason, int? code)
    {
        var text = string.IsNullOrEmpty(reason) ? state : $"{state}: {reason}";
        return code is { } c ? string.Create(CultureInfo.InvariantCulture, $"{text} ({c})") : text;
    }

    internal static string? ValidateConnectionDetail(string? detail)
    {
        if (detail is not null && detail.Length > MaxConnectionDetailLength)
        {
            throw new InvalidSessionInputException(
                "connection_detail",
                string.Create(CultureInfo.InvariantCulture, $"The connection detail is {detail.Length} characters; the limit is {MaxConnectionDetailLength}."));
        }

        return detail;
    }

    /// <summary>Bytes the encryption envelope adds to auth state (format byte, nonce, tag).</summary>
    internal const int AuthStateEnvelopeBytes = 1 + 12 + 16;

    internal static void ValidateAuthState(int length, int envelope = 0)
    {
        if (length - envelope > MaxAuthStateBytes)
        {
            throw new InvalidSessionInputException(
                "auth_state",
                string.Create(CultureInfo.InvariantCulture, $"The auth state is {length - envelope} bytes; the limit is {MaxAuthStateBytes} bytes (1 MiB)."));
        }
    }

    internal static string ValidateBotType(string? botType)
    {
        SessionIds.Validate(botType, "bot_type");
        if (botType!.Length > MaxBotTypeLength)
        {
            throw new InvalidSessionInputException(
                "bot_type",
                string.Create(CultureInfo.InvariantCulture, $"'bot_type' is {botType.Length} characters long; the limit is {MaxBotTypeLength}."));
        }

        return botType;
    }

    internal static StartBotSession ValidateStart(StartBotSession? request)
    {
        ArgumentNullException.ThrowIfNull(request);
        SessionIds.Validate(request.SessionId);
        ValidateBotType(request.BotType);
        if (request.Owner is not null)
        {
            SessionIds.Validate(request.Owner, "owner");
        }

        return request;
    }

    internal static BotListQuery ValidateList(BotListQuery? query)
    {
        query ??= new BotListQuery();
        if (query.Limit is < 1 or > MaxPageSize)
        {
            throw new InvalidSessionInputException(
                "limit",
                string.Create(CultureInfo.InvariantCulture, $"'limit' must be between 1 and {MaxPageSize}; it was {query.Limit}."));
        }

        if (query.Owner is not null)
        {
            SessionIds.Validate(query.Owner, "owner");
        }

        if (query.After is not null)
        {
            SessionIds.Validate(query.After, "cursor");
        }

        return query;
    }
}
