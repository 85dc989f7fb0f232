using System.Text.Json;
using Holdfast.Client;
using Holdfast.Client.Models;

namespace Holdfast.Cli.Tests;

/// <summary><c>gen ls --limit N</c> reads as many pages as N needs (the CLI asks for at most 200 per page).</summary>
public sealed class GenListPagingTests
{
    [Fact(Timeout = 180_000)]
    public async Task GenLsLimit_MoreThanOnePage_NewestFirstEachOnce()
    {
        await using var server = await ServerProcess.StartNewAsync(settings: new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Scripted__TokensPerSecond"] = "0",
        });
        using var client = HoldfastClient.ForUnixSocket(server.SocketPath);
        var created = new List<string>();
        for (var i = 0; i < 205; i++)
        {
            var generation = await client.CreateGenerationAsync(new CreateGenerationRequest("scripted", [new InputMessage("user", $"page {i}")], Parameters: new GenerationParameters(MaxTokens: 1)));
            created.Add(generation.Id);
        }

        var newestFirst = Enumerable.Reverse(created).ToList();

        var many = await CliProcess.RunAsync(["gen", "ls", "--limit", "203", "--json"], server.Environment);
        var few = await CliProcess.RunAsync(["gen", "ls", "--limit", "3", "--json"], server.Environment);
        var all = await CliProcess.RunAsync(["gen", "ls", "--limit", "1000", "--json"], server.Environment);

        Ids(many).ShouldBe(newestFirst.Take(203).ToList(), "two pages of the API (200 + 3), newest first, each once");
        Ids(few).ShouldBe(newestFirst.Take(3).ToList());
        Ids(all).ShouldBe(newestFirst, "more than exist: every one, once");
    }

    private static List<string> Ids(CliResult result)
    {
        result.ExitCode.ShouldBe(0, result.ToString());
        using var document = JsonDocument.Parse(result.Stdout);
        return document.RootElement.GetProperty("items").EnumerateArray().Select(g => g.GetProperty("id").GetString()!).ToList();
    }
}
