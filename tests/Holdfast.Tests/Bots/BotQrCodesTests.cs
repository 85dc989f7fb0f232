using Holdfast.Bots;
using Holdfast.Sessions;

namespace Holdfast.Tests.Bots;

public sealed class BotQrCodesTests
{
    private const string Link = "http://127.0.0.1:7400/pair/bot1?token=abc";

    [Fact]
    public void RenderPng_Link_ReturnsPngImage()
    {
        var png = BotQrCodes.RenderPng(Link);

        png.Length.ShouldBeGreaterThan(100);
        png.AsSpan(0, 8).ToArray().ShouldBe(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
    }

    [Fact]
    public void RenderSvg_Link_ReturnsSvgDocument()
    {
        var svg = BotQrCodes.RenderSvg(Link);

        svg.ShouldContain("<svg");
        svg.ShouldContain("</svg>");
    }

    [Fact]
    public void RenderText_Link_ReturnsSquareBlockArt()
    {
        var lines = BotQrCodes.RenderText(Link).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        lines.Length.ShouldBeGreaterThan(10);
        lines.Select(l => l.Length).Distinct().Count().ShouldBe(1);
        string.Concat(lines).ShouldContain("█");
    }

    [Fact]
    public void RenderPng_OversizedPayload_RejectedNamingTheLimit()
    {
        var ex = Should.Throw<InvalidSessionInputException>(() => BotQrCodes.RenderPng(new string('a', BotLimits.MaxQrBytes + 1)));

        ex.Message.ShouldContain("4096 bytes");
    }
}
