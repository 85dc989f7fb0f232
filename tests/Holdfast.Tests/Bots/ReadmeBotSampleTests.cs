using Holdfast.Bots;
using Holdfast.Hosting;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.Tests.Bots;

/// <summary>The README's bot sample runs here as written, and the README is checked to show exactly this code.</summary>
public sealed class ReadmeBotSampleTests
{
    private const string Begin = "// README bot sample: begin";
    private const string End = "// README bot sample: end";

    [Fact(Timeout = 60_000)]
    public async Task ReadmeBotSample_RunAsWritten_StartsQrMessageEnd()
    {
        using var temp = new TempDirectory();
        string[] args = [$"--Storage:DataDirectory={temp.Path}", "--Logging:LogLevel:Default=Warning"];

        // README bot sample: begin
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddHoldfastSqliteStorage();   // the store: SQLite in $HOLDFAST_DATA, migrated on start
        builder.Services.AddHoldfastCore();            // bots (and generations), restore on start
        using var host = builder.Build();
        await host.StartAsync();

        var botManager = host.Services.GetRequiredService<BotManager>();
        var started = await botManager.StartSessionAsync(new("bot1"));    // reactivates bot1, or creates it
        Console.WriteLine(BotQrCodes.RenderText(started.Session.QrData!)); // the web connector's pairing QR

        await botManager.RecordMessageAsync("bot1", "hello");             // a received message
        var bot = await botManager.GetAsync("bot1");                      // status, qr_data, last_message, …
        await botManager.EndSessionAsync("bot1");                         // inactive, qr_data cleared
        // README bot sample: end

        bot.LastMessage.ShouldBe("hello");
        bot.Status.ShouldBe(BotSessionStatus.Active);
        (await botManager.GetAsync("bot1")).Status.ShouldBe(BotSessionStatus.Inactive);
        await host.StopAsync();
    }

    [Fact(Timeout = 30_000)]
    public async Task Readme_BotSection_ShowsTheTestedSample()
    {
        var sample = await ReadmeCode.BetweenAsync(["tests", "Holdfast.Tests", "Bots", "ReadmeBotSampleTests.cs"], Begin, End);

        var readme = await ReadmeCode.ReadReadmeAsync();

        readme.ShouldContain(sample);
    }
}
