using System.Text.Json;
using Holdfast.Client.Models;

namespace Holdfast.Cli.Tests;

/// <summary><c>holdfast bot …</c> against a real server process.</summary>
public sealed class BotCommandTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact(Timeout = 120_000)]
    public async Task BotLifecycle_StartQrShowLsEventsEnd()
    {
        var started = await fixture.RunAsync("bot", "start", "cli-bot-1");
        started.ExitCode.ShouldBe(0, started.ToString());
        started.Stdout.ShouldContain("cli-bot-1 active");

        var qr = await fixture.RunAsync("bot", "qr", "cli-bot-1");
        qr.ExitCode.ShouldBe(0, qr.ToString());
        qr.Stdout.ShouldContain("█");
        qr.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length.ShouldBeGreaterThan(10);

        var qrJson = await fixture.RunAsync("bot", "qr", "cli-bot-1", "--json");
        qrJson.ExitCode.ShouldBe(0, qrJson.ToString());
        using (var document = JsonDocument.Parse(qrJson.Stdout))
        {
            document.RootElement.GetProperty("qr_data").GetString().ShouldNotBeNullOrEmpty();
        }

        var svgPath = Path.Combine(fixture.Server.Data.Path, "qr.svg");
        var svg = await fixture.RunAsync("bot", "qr", "cli-bot-1", "--format", "svg", "--output", svgPath);
        svg.ExitCode.ShouldBe(0, svg.ToString());
        (await File.ReadAllTextAsync(svgPath)).ShouldContain("<svg");

        var shown = await fixture.RunAsync("bot", "show", "cli-bot-1", "--json");
        shown.ExitCode.ShouldBe(0, shown.ToString());
        var bot = JsonSerializer.Deserialize<Bot>(shown.Stdout, HoldfastJson.Options)!;
        bot.Status.ShouldBe(BotStatus.Active);
        bot.QrData.ShouldNotBeNull();

        var listed = await fixture.RunAsync("bot", "ls", "--status", "active");
        listed.ExitCode.ShouldBe(0, listed.ToString());
        listed.Stdout.ShouldContain("cli-bot-1");

        var ended = await fixture.RunAsync("bot", "end", "cli-bot-1", "--json");
        ended.ExitCode.ShouldBe(0, ended.ToString());
        var endedBot = JsonSerializer.Deserialize<Bot>(ended.Stdout, HoldfastJson.Options)!;
        endedBot.Status.ShouldBe(BotStatus.Inactive);
        endedBot.QrData.ShouldBeNull();

        var events = await fixture.RunAsync("bot", "events", "cli-bot-1", "--json");
        events.ExitCode.ShouldBe(0, events.ToString());
        var page = JsonSerializer.Deserialize<AuditPage>(events.Stdout, HoldfastJson.Options)!;
        page.Items.Count.ShouldBeGreaterThanOrEqualTo(2);

        var qrAfterEnd = await fixture.RunAsync("bot", "qr", "cli-bot-1", "--wait", "0");
        qrAfterEnd.ExitCode.ShouldBe(3, qrAfterEnd.ToString());
        qrAfterEnd.Stderr.ShouldContain("bot start cli-bot-1");
    }

    [Fact(Timeout = 60_000)]
    public async Task BotAssign_GivesTheBotToAUser_Audited()
    {
        (await fixture.RunAsync("bot", "start", "cli-assign-bot", "--type", "bridge")).ExitCode.ShouldBe(0);

        var assigned = await fixture.RunAsync("bot", "assign", "cli-assign-bot", "--owner", "carol");

        assigned.ExitCode.ShouldBe(0, assigned.ToString());
        assigned.Stdout.ShouldContain("cli-assign-bot owner carol");
        var shown = await fixture.RunAsync("bot", "show", "cli-assign-bot", "--json");
        JsonSerializer.Deserialize<Bot>(shown.Stdout, HoldfastJson.Options)!.Owner.ShouldBe("carol");
        var events = await fixture.RunAsync("bot", "events", "cli-assign-bot", "--json");
        JsonSerializer.Deserialize<AuditPage>(events.Stdout, HoldfastJson.Options)!.Items.ShouldContain(e => e.Action == "bot.owner" && e.Detail == "owner local -> carol");
        var unknown = await fixture.RunAsync("bot", "assign", "no-such-bot", "--owner", "carol");
        unknown.ExitCode.ShouldBe(3, unknown.ToString());
    }

    [Fact(Timeout = 60_000)]
    public async Task BotQr_TerminalDrawing_DecodesOnALightAndADarkTerminal()
    {
        (await fixture.RunAsync("bot", "start", "cli-qr-bot")).ExitCode.ShouldBe(0);
        var link = JsonSerializer.Deserialize<Bot>((await fixture.RunAsync("bot", "show", "cli-qr-bot", "--json")).Stdout, HoldfastJson.Options)!.QrData;

        var drawn = await fixture.RunAsync("bot", "qr", "cli-qr-bot");

        drawn.ExitCode.ShouldBe(0, drawn.ToString());
        link.ShouldNotBeNull();
        Holdfast.TestHelpers.TerminalQr.Decode(drawn.Stdout, darkTheme: false).ShouldBe(link, "a phone scanning a light terminal");
        Holdfast.TestHelpers.TerminalQr.Decode(drawn.Stdout, darkTheme: true).ShouldBe(link, "a phone scanning a dark terminal");
    }

    [Fact(Timeout = 60_000)]
    public async Task BotShow_Unknown_Exit3()
    {
        var result = await fixture.RunAsync("bot", "show", "no-such-bot");

        result.ExitCode.ShouldBe(3, result.ToString());
        result.Stderr.ShouldStartWith("holdfast: ");
    }

    [Fact(Timeout = 60_000)]
    public async Task BotStart_InvalidId_Exit2()
    {
        var result = await fixture.RunAsync("bot", "start", "bad id!");

        result.ExitCode.ShouldBe(2, result.ToString());
    }

    [Fact(Timeout = 60_000)]
    public async Task BotStart_UnknownType_Exit2BeforeContactingServer()
    {
        var result = await fixture.RunAsync("bot", "start", "x", "--type", "telepathy");

        result.ExitCode.ShouldBe(2, result.ToString());
    }
}
