using ZXing;
using ZXing.Common;
using ZXing.QrCode;

namespace Holdfast.TestHelpers;

/// <summary>
/// What a phone sees when it scans a QR code drawn in a terminal: paints terminal text (half blocks and ANSI colour
/// codes) as a terminal with a light or a dark theme would show it, then decodes the picture with ZXing.
/// </summary>
public static class TerminalQr
{
    private const int PixelsPerModule = 4;

    /// <summary>The text the QR code drawn in <paramref name="terminalText"/> holds on a light or dark terminal, or null when none decodes.</summary>
    public static string? Decode(string terminalText, bool darkTheme)
    {
        ArgumentNullException.ThrowIfNull(terminalText);
        var (pixels, width, height) = Paint(terminalText, darkTheme);
        var source = new RGBLuminanceSource(pixels, width, height, RGBLuminanceSource.BitmapFormat.Gray8);
        var hints = new Dictionary<DecodeHintType, object> { [DecodeHintType.TRY_HARDER] = true };
        return new QRCodeReader().decode(new BinaryBitmap(new HybridBinarizer(source)), hints)?.Text;
    }

    /// <summary>Gray pixels of the text as shown by a terminal: each character cell is one module wide and two tall.</summary>
    public static (byte[] Pixels, int Width, int Height) Paint(string terminalText, bool darkTheme)
    {
        ArgumentNullException.ThrowIfNull(terminalText);
        byte themeForeground = darkTheme ? (byte)230 : (byte)20;
        byte themeBackground = darkTheme ? (byte)20 : (byte)245;
        var lines = terminalText.Replace("\r", string.Empty, StringComparison.Ordinal).TrimEnd('\n').Split('\n');
        var cells = new List<List<(byte Top, byte Bottom)>>();
        var foreground = themeForeground;
        var background = themeBackground;
        foreach (var line in lines)
        {
            var row = new List<(byte, byte)>();
            for (var i = 0; i < line.Length; i++)
            {
                if (line[i] == '\u001b' && i + 1 < line.Length && line[i + 1] == '[')
                {
                    var end = line.IndexOf('m', i);
                    foreach (var code in line[(i + 2)..end].Split(';'))
                    {
                        (foreground, background) = code switch
                        {
                            "" or "0" => (themeForeground, themeBackground),
                            "30" => ((byte)0, background),
                            "37" => ((byte)200, background),
                            "97" => ((byte)255, background),
                            "39" => (themeForeground, background),
                            "40" => (foreground, (byte)0),
                            "47" => (foreground, (byte)200),
                            "107" => (foreground, (byte)255),
                            "49" => (foreground, themeBackground),
                            _ => (foreground, background),
                        };
                    }

                    i = end;
                    continue;
                }

                row.Add(line[i] switch
                {
                    '█' => (foreground, foreground),
                    '▀' => (foreground, background),
                    '▄' => (background, foreground),
                    _ => (background, background),
                });
            }

            cells.Add(row);
        }

        // The terminal's own background all round, as on a screen.
        const int margin = 8;
        var columns = cells.Max(r => r.Count) + (2 * margin);
        var moduleRows = (cells.Count * 2) + (2 * margin);
        var width = columns * PixelsPerModule;
        var height = moduleRows * PixelsPerModule;
        var pixels = new byte[width * height];
        Array.Fill(pixels, themeBackground);
        for (var r = 0; r < cells.Count; r++)
        {
            for (var c = 0; c < cells[r].Count; c++)
            {
                Fill(pixels, width, c + margin, (2 * r) + margin, cells[r][c].Top);
                Fill(pixels, width, c + margin, (2 * r) + 1 + margin, cells[r][c].Bottom);
            }
        }

        return (pixels, width, height);
    }

    private static void Fill(byte[] pixels, int width, int column, int moduleRow, byte value)
    {
        for (var y = 0; y < PixelsPerModule; y++)
        {
            Array.Fill(pixels, value, ((moduleRow * PixelsPerModule) + y) * width + (column * PixelsPerModule), PixelsPerModule);
        }
    }
}
