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

    /// <summary>Text for a terminal: two QR rows per line with Unicode half blocks, quiet zone included.</summary>
    public static string RenderText(string payload)
    {
        using var data = Encode(payload);
        using var ascii = new AsciiQRCode(data);
        return ascii.GetGraphicSmall(drawQuietZones: true, invert: false, endOfLine: "\n");
    }

    private static QRCodeData Encode(string payload)
    {
        ArgumentException.ThrowIfNullOrEmpty(payload);
        BotLimits.ValidateQr(payload);
        return QRCodeGenerator.GenerateQrCode(payload, QRCodeGenerator.ECCLevel.M);
    }
}
