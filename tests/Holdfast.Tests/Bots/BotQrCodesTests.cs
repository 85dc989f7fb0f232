using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.TestHelpers;

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

        ex.Message.ShouldContain("2953 bytes");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RenderAnsi_DecodesOnALightAndADarkTerminal(bool darkTheme)
    {
        var text = BotQrCodes.RenderAnsi(Link);

        TerminalQr.Decode(text, darkTheme).ShouldBe(Link, darkTheme ? "dark terminal" : "light terminal");
    }

    [Fact]
    public void RenderText_PlainDrawing_DecodesOnADarkTerminal_InvertedOnALightOne()
    {
        TerminalQr.Decode(BotQrCodes.RenderText(Link), darkTheme: true).ShouldBe(Link);
        TerminalQr.Decode(BotQrCodes.RenderText(Link, invert: true), darkTheme: false).ShouldBe(Link);
        TerminalQr.Decode(BotQrCodes.RenderText(Link), darkTheme: false).ShouldBeNull("the plain drawing depends on the theme: why the CLI draws with colours");
    }

    [Theory]
    [InlineData(2331)]
    [InlineData(2332)]
    [InlineData(2600)]
    [InlineData(2953)]
    public void Render_PayloadsUpToTheLimit_DrawInEveryFormat(int bytes)
    {
        var payload = new string('p', bytes);

        BotQrCodes.RenderPng(payload, 1).Length.ShouldBeGreaterThan(100);
        BotQrCodes.RenderSvg(payload, 1).ShouldContain("<svg");
        BotQrCodes.RenderText(payload).ShouldContain("█");
        TerminalQr.Decode(BotQrCodes.RenderAnsi(payload), darkTheme: false).ShouldBe(payload);
    }

    [Theory]
    [InlineData(2954, "p")]
    [InlineData(4096, "p")]
    [InlineData(1000, "€")]
    public void Render_PayloadsNoQrHolds_RejectedNamingTheLimit(int count, string unit)
    {
        var payload = string.Concat(Enumerable.Repeat(unit, count));

        var ex = Should.Throw<InvalidSessionInputException>(() => BotQrCodes.RenderPng(payload));

        ex.Message.ShouldContain("2953 bytes");
    }
}
