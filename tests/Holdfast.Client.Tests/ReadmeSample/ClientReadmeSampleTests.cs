using Holdfast.Client.Models;
using Holdfast.Client.Tests.EndToEnd;
using Holdfast.TestHelpers;

namespace Holdfast.Client.Tests.ReadmeSample;

/// <summary>The README's .NET client snippet (with its using lines) runs as written, and the README shows exactly it.</summary>
public sealed class ClientReadmeSampleTests
{
    [Fact(Timeout = 120_000)]
    public async Task ClientSample_RunAsWritten_FollowsAGenerationToItsEnd()
    {
        await using var host = await HoldfastHost.StartAsync();

        await ReadmeSamples.ClientReadmeSample.RunAsync([host.DataDirectory]);

        using var client = host.Socket();
        var generation = (await client.ListGenerationsAsync()).Items.ShouldHaveSingleItem();
        generation.Status.ShouldBe(GenerationStatus.Completed);
    }

    [Fact(Timeout = 30_000)]
    public async Task Readme_ShowsTheTestedClientSample_WithItsUsings()
    {
        var source = await File.ReadAllLinesAsync(RepositoryRoot.File("tests", "Holdfast.Client.Tests", "ReadmeSample", "ClientReadmeSample.cs"));
        var usings = ReadmeCode.LinesBetween(source, "// README client sample: usings begin", "// README client sample: usings end");
        var body = ReadmeCode.LinesBetween(source, "// README client sample: begin", "// README client sample: end");

        var readme = await ReadmeCode.ReadReadmeAsync();

        readme.ShouldContain("```csharp\n" + usings + "\n\n" + body + "\n```");
    }
}
