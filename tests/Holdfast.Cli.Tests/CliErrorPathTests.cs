using System.Text.Json;
using Holdfast.Client;
using Holdfast.Client.Models;

namespace Holdfast.Cli.Tests;

/// <summary>Error paths of client commands (exit code and one line), and the JSON of read commands, against a real server.</summary>
public sealed class CliErrorPathTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Theory(Timeout = 60_000)]
    [InlineData("gen", "pause")]
    [InlineData("gen", "cancel")]
    [InlineData("gen", "resume")]
    [InlineData("gen", "attach")]
    [InlineData("gen", "events")]
    [InlineData("gen", "fork")]
    [InlineData("bot", "end")]
    [InlineData("bot", "events")]
    [InlineData("bot", "qr")]
    public async Task Command_UnknownId_Exit3WithOneLine(string noun, string verb)
    {
        var result = await fixture.RunAsync(noun, verb, "no-such-session-42");

        result.ExitCode.ShouldBe(3, result.ToString());
        var lines = result.Stderr.Trim().Split('\n');
        lines.ShouldHaveSingleItem(result.ToString()).ShouldStartWith("holdfast: ");
        lines[0].ShouldContain("no-such-session-42");
        result.Stdout.ShouldBeEmpty();
    }

    [Fact(Timeout = 120_000)]
    public async Task BotLsJson_ListsBotsWithTheApiShape()
    {
        (await fixture.RunAsync("bot", "start", "json-bot-a", "--type", "bridge")).ExitCode.ShouldBe(0);
        (await fixture.RunAsync("bot", "start", "json-bot-b")).ExitCode.ShouldBe(0);

        var listed = await fixture.RunAsync("bot", "ls", "--json");

        listed.ExitCode.ShouldBe(0, listed.ToString());
        using var document = JsonDocument.Parse(listed.Stdout);
        var items = document.RootElement.GetProperty("items").EnumerateArray().ToList();
        var a = items.Single(b => b.GetProperty("session_id").GetString() == "json-bot-a");
        a.GetProperty("status").GetString().ShouldBe("active");
        a.GetProperty("bot_type").GetString().ShouldBe("bridge");
        a.GetProperty("owner").GetString().ShouldNotBeNullOrEmpty();
        a.GetProperty("version").GetInt64().ShouldBeGreaterThan(0);
        a.GetProperty("created_at").GetDateTimeOffset().ShouldBeLessThanOrEqualTo(a.GetProperty("updated_at").GetDateTimeOffset());
        var b = items.Single(x => x.GetProperty("session_id").GetString() == "json-bot-b");
        b.GetProperty("bot_type").GetString().ShouldBe("web");
        JsonSerializer.Deserialize<ItemPage<Bot>>(listed.Stdout, HoldfastJson.Options)!.Items.Count.ShouldBe(items.Count);
    }

    [Fact(Timeout = 120_000)]
    public async Task GenForkJson_PrintsTheNewSessionWithTheApiShape()
    {
        var started = await fixture.RunAsync("gen", "start", "--model", "scripted", "--max-tokens", "40", "--seed", "5", "Fork me as JSON");
        started.ExitCode.ShouldBe(0, started.ToString());
        var id = started.Stdout.Trim();
        (await fixture.RunAsync("gen", "attach", id)).ExitCode.ShouldBe(0);

        var forked = await fixture.RunAsync("gen", "fork", id, "--at-seq", "4", "--json");

        forked.ExitCode.ShouldBe(0, forked.ToString());
        using var document = JsonDocument.Parse(forked.Stdout);
        var root = document.RootElement;
        var forkId = root.GetProperty("id").GetString();
        forkId.ShouldNotBeNullOrEmpty();
        forkId.ShouldNotBe(id);
        root.GetProperty("forked_from").GetString().ShouldBe(id);
        root.GetProperty("forked_at_seq").GetInt64().ShouldBe(4);
        root.GetProperty("model").GetString().ShouldBe("scripted");
        root.GetProperty("status").GetString().ShouldBeOneOf("queued", "running", "completed");
        var prefix = root.GetProperty("output").GetString();
        prefix.ShouldNotBeNullOrEmpty();
        using var client = HoldfastClient.ForUnixSocket(fixture.Server.SocketPath);
        (await client.GetGenerationAsync(id)).Output!.ShouldStartWith(prefix, customMessage: "the fork starts with the parent's output up to seq 4");
        (await client.GetGenerationAsync(forkId!)).ForkedFrom.ShouldBe(id);
    }
}
