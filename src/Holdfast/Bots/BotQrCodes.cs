using QRCoder;

namespace Holdfast.Bots;

/// <summary>Renders a bot session's QR payload as PNG bytes, an SVG document, or text for a terminal.</summary>
public static class BotQrCodes
{
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
