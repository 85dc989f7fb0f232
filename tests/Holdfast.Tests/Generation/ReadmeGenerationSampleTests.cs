using Holdfast.Generation;
using Holdfast.Hosting;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.Tests.Generation;

/// <summary>The README's generation sample runs here as written, and the README is checked to show exactly this code.</summary>
public sealed class ReadmeGenerationSampleTests
{
    private const string Begin = "// README generation sample: begin";
    private const string End = "// README generation sample: end";

    [Fact(Timeout = 60_000)]
    public async Task ReadmeGenerationSample_RunAsWritten_PausesResumesAndFollows()
    {
        using var temp = new TempDirectory();
        string[] args = [$"--Storage:DataDirectory={temp.Path}", "--Logging:LogLevel:Default=Warning"];
        var text = new System.Text.StringBuilder();

        // README generation sample: begin
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddHoldfastSqliteStorage();   // the store: SQLite in $HOLDFAST_DATA, migrated on start
        builder.Services.AddHoldfastCore();            // the generation runner, recovery on start
        using var host = builder.Build();
        await host.StartAsync();

        var sessions = host.Services.GetRequiredService<GenerationSessions>();
        var (session, created) = await sessions.CreateAsync(new CreateGenerationRequest
        {
            Owner = "alice",
            Model = "scripted",              // the deterministic test backend; e.g. "llama3.2" for a local Ollama
            Input = [new GenerationMessage("user", "Tell me about harbours")],
            Parameters = new GenerationParameters { Seed = 7, MaxTokens = 40 },
            IdempotencyKey = "harbour-1",    // a retried start returns the same session
        });

        var alice = new Actor("alice");
        await sessions.PauseAsync(session.Id, alice, wait: TimeSpan.FromSeconds(5)); // durable; output kept
        await sessions.ResumeAsync(session.Id, alice);                               // continues exactly there
        await foreach (var e in sessions.FollowAsync(session.Id, "alice"))          // stored part, then live
        {
            text.Append(e.Text);                                                     // ends after "completed"
        }
        // README generation sample: end

        var done = await sessions.GetAsync(session.Id, "alice");
        created.ShouldBeTrue();
        done.Status.ShouldBe(GenerationStatus.Completed);
        text.ToString().ShouldBe(done.Output);
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(new CreateGenerationRequest
        {
            Owner = "alice",
            Model = "scripted",
            Input = [new GenerationMessage("user", "Tell me about harbours")],
            Parameters = new GenerationParameters { Seed = 7, MaxTokens = 40 },
        }));
        await host.StopAsync();
    }

    [Fact(Timeout = 30_000)]
    public async Task Readme_GenerationSection_ShowsTheTestedSample()
    {
        var sample = await ReadmeCode.BetweenAsync(["tests", "Holdfast.Tests", "Generation", "ReadmeGenerationSampleTests.cs"], Begin, End);

        var readme = await ReadmeCode.ReadReadmeAsync();

        readme.ShouldContain(sample);
    }
}
