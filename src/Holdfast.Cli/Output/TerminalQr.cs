using System.Text;
using QRCoder;

namespace Holdfast.Cli.Output;

/// <summary>
/// Draws a QR code with Unicode half blocks, two module rows per text line (like <c>qrencode -t UTF8</c>), with the
/// quiet zone. By default light modules are drawn as blocks, which scans on a dark terminal; <c>invert</c> for a light one.
/// </summary>
internal static class TerminalQr
{
    public static string Render(string data, bool invert = false)
    {
        using var generator = new QRCodeGenerator();
        using var code = generator.CreateQrCode(data, QRCodeGenerator.ECCLevel.M);
        var matrix = code.ModuleMatrix;
        var size = matrix.Count;
        var builder = new StringBuilder();
        for (var y = 0; y < size; y += 2)
        {
            for (var x = 0; x < size; x++)
            {
                var top = Painted(matrix[y][x], invert);
                var bottom = y + 1 < size ? Painted(matrix[y + 1][x], invert) : !invert;
                builder.Append((top, bottom) switch
                {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    _ => ' ',
                });
            }

            builder.Append('\n');
        }

        return builder.ToString();
    }

    // A painted cell shows the terminal's foreground colour: on a dark terminal the light modules are painted.
    private static bool Painted(bool dark, bool invert) => invert ? dark : !dark;
}
