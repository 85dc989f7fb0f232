using QRCoder;

namespace Holdfast.Bots;

/// <summary>Renders a bot session's QR payload as PNG bytes, an SVG document, or text for a terminal.</summary>
public static class BotQrCodes
{
    /// <summary>When the session's current QR expires (<see cref="BotSession.QrSetAt"/> + <paramref name="lifetime"/>), or null without a QR.</summary>
    public static DateTimeOffset? ExpiresAt(BotSession session, TimeSpan lifetime)
    {
        ArgumentNullException.ThrowIfNull(session);
        return session.QrData is null ? null : (session.QrSetAt ?? session.UpdatedAt) + lifetime;
    }

    /// <summary>
    /// True when the session's QR can no longer be scanned: its lifetime is over at <paramref name="now"/>, or it was
    /// stored before <paramref name="serviceStartedAt"/> (every QR from before a restart counts as expired).
    /// </summary>
    public static bool IsExpired(BotSession session, DateTimeOffset now, DateTimeOffset serviceStartedAt, TimeSpan lifetime)
    {
        ArgumentNullException.ThrowIfNull(session);
        return session.QrData is not null
            && ((session.QrSetAt ?? session.UpdatedAt) < serviceStartedAt || now >= ExpiresAt(session, lifetime));
    }

    /// <summary>PNG image, <paramref name="pixelsPerModule"/> pixels per QR module (1–64).</summary>
    public static byte[] RenderPng(string payload, int pixelsPerModule = 8)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(pixelsPerModule is >= 1 and <= 64, true, nameof(pixelsPerModule));
        using var data = Encode(payload);
        using var png = new PngByteQRCode(data);
        return png.GetGraphic(pixelsPerModule);
    }

    /// <summary>SVG document (<c>image/svg+xml</c>), <paramref name="pixelsPerModule"/> units per QR module (1–64).</summary>
    public static string RenderSvg(string payload, int pixelsPerModule = 8)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(pixelsPerModule is >= 1 and <= 64, true, nameof(pixelsPerModule));
        using var data = Encode(payload);
        using var svg = new SvgQRCode(data);
        return svg.GetGraphic(pixelsPerModule);
    }

    /// <summary>
    /// Text for a terminal that any phone decodes whatever the terminal's theme: two QR rows per line with Unicode half
    /// blocks, drawn with explicit ANSI colours (black modules on a bright white field, a 4-module quiet zone all
    /// round), so a light and a dark terminal show the same dark-on-light code. Every line ends with a colour reset.
    /// </summary>
    public static string RenderAnsi(string payload)
    {
        using var data = Encode(payload);
        var matrix = data.ModuleMatrix; // includes QRCoder's 4-module quiet zone
        var size = matrix.Count;
        var text = new System.Text.StringBuilder();
        for (var row = 0; row < size; row += 2)
        {
            text.Append(AnsiDarkOnLight);
            for (var column = 0; column < size; column++)
            {
                var top = matrix[row][column];
                var bottom = row + 1 < size && matrix[row + 1][column];
                text.Append((top, bottom) switch
                {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    _ => ' ',
                });
            }

            text.Append(AnsiReset).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>SGR: black foreground (the modules) on a bright white background (the field).</summary>
    internal const string AnsiDarkOnLight = "\u001b[30;107m";

    /// <summary>SGR: back to the terminal's own colours.</summary>
    internal const string AnsiReset = "\u001b[0m";

    /// <summary>
    /// Plain text (no colours): two QR rows per line with Unicode half blocks, quiet zone included. Blocks are the
    /// light parts, for light text on a dark background; <paramref name="invert"/> draws the dark parts instead, for
    /// dark text on a light background (paper, a light terminal). <see cref="RenderAnsi"/> works on both.
    /// </summary>
    public static string RenderText(string payload, bool invert = false)
    {
        using var data = Encode(payload);
        using var ascii = new AsciiQRCode(data);
        return ascii.GetGraphicSmall(drawQuietZones: true, invert: invert, endOfLine: "\n");
    }

    /// <summary>Payloads up to this many UTF-8 bytes always fit one QR code (with medium error correction).</summary>
    internal const int AlwaysFitsBytes = 2300;

    /// <summary>True when <paramref name="payload"/> fits one QR code (at the lowest error correction, if need be).</summary>
    internal static bool Fits(string payload)
    {
        try
        {
            using var data = QRCodeGenerator.GenerateQrCode(payload, QRCodeGenerator.ECCLevel.L);
            return true;
        }
        catch (QRCoder.Exceptions.DataTooLongException)
        {
            return false;
        }
    }

    private static QRCodeData Encode(string payload)
    {
        ArgumentException.ThrowIfNullOrEmpty(payload);
        BotLimits.ValidateQr(payload);
        try
        {
            return QRCodeGenerator.GenerateQrCode(payload, QRCodeGenerator.ECCLevel.M);
        }
        catch (QRCoder.Exceptions.DataTooLongException)
        {
            // Too long for medium error correction (over 2,331 bytes): low still holds it (ValidateQr checked).
            return QRCodeGenerator.GenerateQrCode(payload, QRCodeGenerator.ECCLevel.L);
        }
    }
}
