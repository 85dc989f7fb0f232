using System.Text.Json;
using Holdfast.Client;
using Holdfast.Client.Models;


namespace Holdfast.Cli.Tests;

/// <summary><c>holdfast gen …</c> against a real server process: each command's happy path and an error path.</summary>
public sealed class GenerationCommandTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact(Timeout = 120_000)]
    public async Task GenStart_PrintsIdThatShowAndLsKnow()
    {
        var started = await fixture.RunAsync("gen", "start", "--model", "scripted", "--max-tokens", "40", "--meta", "purpose=test", "Tell me a story");

        started.ExitCode.ShouldBe(0, started.ToString());
        var id = started.Stdout.Trim();
        id.ShouldNotContain("\n");
        var shown = await fixture.RunAsync("gen", "show", id, "--json");
        shown.ExitCode.ShouldBe(0, shown.ToString());
        var generation = JsonSerializer.Deserialize<Holdfast.Client.Models.Generation>(shown.Stdout, HoldfastJson.Options)!;
        generation.Id.ShouldBe(id);
        generation.Model.ShouldBe("scripted");
        generation.Metadata!["purpose"].ShouldBe("test");
        generation.Input.ShouldHaveSingleItem().Content.ShouldBe("Tell me a story");
        var listed = await fixture.RunAsync("gen", "ls", "--json");
        listed.ExitCode.ShouldBe(0, listed.ToString());
        listed.Stdout.ShouldContain(id);
        var table = await fixture.RunAsync("gen", "ls");
        table.ExitCode.ShouldBe(0, table.ToString());
        table.Stdout.ShouldContain(id);
        table.Stdout.ShouldContain("STATUS");
        var human = await fixture.RunAsync("gen", "show", id);
        human.ExitCode.ShouldBe(0, human.ToString());
        human.Stdout.ShouldContain("scripted");
    }

    [Fact(Timeout = 120_000)]
    public async Task GenStart_PromptFromStdinAndKeyFromEnvironment_OverTcp()
    {
        var key = await CreateKeyAsync("stdin-user");
        var environment = fixture.Server.Environment;
        environment["HOLDFAST_URL"] = fixture.Server.Url.ToString();
        environment["HOLDFAST_KEY"] = key;

        var started = await CliProcess.RunAsync(["gen", "start", "--model", "scripted", "--max-tokens", "10", "--json", "-"], environment, stdin: "A prompt from a pipe");

        started.ExitCode.ShouldBe(0, started.ToString());
        var generation = JsonSerializer.Deserialize<Holdfast.Client.Models.Generation>(started.Stdout, HoldfastJson.Options)!;
        generation.Owner.ShouldBe("stdin-user");
        generation.Input.ShouldHaveSingleItem().Content.ShouldBe("A prompt from a pipe");
    }

    [Fact(Timeout = 120_000)]
    public async Task GenStartWait_PrintsTheFinishedSession()
    {
        var json = await fixture.RunAsync("gen", "start", "--model", "scripted", "--max-tokens", "30", "--wait", "--json", "Wait for me");
        var text = await fixture.RunAsync("gen", "start", "--model", "scripted", "--max-tokens", "30", "--wait", "Wait for me");

        json.ExitCode.ShouldBe(0, json.ToString());
        var finished = JsonSerializer.Deserialize<Holdfast.Client.Models.Generation>(json.Stdout, HoldfastJson.Options)!;
        finished.Status.ShouldBe(GenerationStatus.Completed);
        finished.Output.ShouldNotBeNullOrEmpty();
        text.ExitCode.ShouldBe(0, text.ToString());
        text.Stdout.TrimEnd('\n').ShouldBe(finished.Output!.TrimEnd('\n'));
    }

    [Fact(Timeout = 60_000)]
    public async Task GenShow_UnknownId_Exit3WithMessage()
    {
        var result = await fixture.RunAsync("gen", "show", "gen_doesnotexist");

        result.ExitCode.ShouldBe(3, result.ToString());
        result.Stderr.ShouldStartWith("holdfast: ");
        result.Stdout.ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task GenStart_EmptyModelRejectedByServer_Exit2()
    {
        var result = await fixture.RunAsync("gen", "start", "--model", " ", "hello");

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Stderr.ShouldContain("model");
    }

    [Fact(Timeout = 120_000)]
    public async Task GenAttach_StreamsWholeOutputAndExits0()
    {
        var id = await StartAsync("Attach to me");

        var attached = await fixture.RunAsync("gen", "attach", id);

        attached.ExitCode.ShouldBe(0, attached.ToString());
        var generation = await GetAsync(id);
        generation.Status.ShouldBe(GenerationStatus.Completed);
        attached.Stdout.TrimEnd('\n').ShouldBe(generation.Output!.TrimEnd('\n'));
        attached.Stderr.ShouldContain("[completed]");
    }

    [Fact(Timeout = 120_000)]
    public async Task GenAttachJson_OneEventPerLineEndingWithDone()
    {
        var id = await StartAsync("As JSON");

        var attached = await fixture.RunAsync("gen", "attach", id, "--json");

        attached.ExitCode.ShouldBe(0, attached.ToString());
        var lines = attached.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        lines.ShouldContain(l => l.GetProperty("type").GetString() == "chunk");
        lines[^1].GetProperty("type").GetString().ShouldBe("done");
        lines[^1].GetProperty("status").GetString().ShouldBe("completed");
    }

    [Fact(Timeout = 120_000)]
    public async Task GenPauseThenResume_StatusesReportedThenCancelEndsAttach()
    {
        var id = await StartAsync("Pause me", maxTokens: 100_000);

        var paused = await fixture.RunAsync("gen", "pause", id, "--reason", "testing", "--json");

        paused.ExitCode.ShouldBe(0, paused.ToString());
        JsonSerializer.Deserialize<Holdfast.Client.Models.Generation>(paused.Stdout, HoldfastJson.Options)!.Status.ShouldBe(GenerationStatus.Paused);
        var resumed = await fixture.RunAsync("gen", "resume", id);
        resumed.ExitCode.ShouldBe(0, resumed.ToString());
        resumed.Stdout.ShouldStartWith($"{id} running");
        var cancelled = await fixture.RunAsync("gen", "cancel", id);
        cancelled.ExitCode.ShouldBe(0, cancelled.ToString());
        cancelled.Stdout.ShouldStartWith($"{id} cancelled");
        var attached = await fixture.RunAsync("gen", "attach", id);
        attached.ExitCode.ShouldBe(0, attached.ToString());
        attached.Stderr.ShouldContain("[paused: testing]");
        attached.Stderr.ShouldContain("[cancelled]");
        var events = await fixture.RunAsync("gen", "events", id, "--json");
        events.ExitCode.ShouldBe(0, events.ToString());
        events.Stdout.ShouldContain("testing");
        var table = await fixture.RunAsync("gen", "events", id);
        table.ExitCode.ShouldBe(0, table.ToString());
        table.Stdout.ShouldContain("ACTION");
    }

    [Fact(Timeout = 120_000)]
    public async Task GenResume_CompletedGeneration_Exit4Conflict()
    {
        var id = await StartAsync("Finish first");
        (await fixture.RunAsync("gen", "attach", id)).ExitCode.ShouldBe(0);

        var resumed = await fixture.RunAsync("gen", "resume", id);

        resumed.ExitCode.ShouldBe(4, resumed.ToString());
        resumed.Stderr.ShouldStartWith("holdfast: ");
        resumed.Stderr.Trim().Split('\n').Length.ShouldBe(1);
    }

    [Fact(Timeout = 120_000)]
    public async Task GenCancel_RunningGeneration_CancelledAndAttachEnds()
    {
        var id = await StartAsync("Cancel me", maxTokens: 100_000);

        var cancelled = await fixture.RunAsync("gen", "cancel", id, "--json");

        cancelled.ExitCode.ShouldBe(0, cancelled.ToString());
        JsonSerializer.Deserialize<Holdfast.Client.Models.Generation>(cancelled.Stdout, HoldfastJson.Options)!.Status.ShouldBe(GenerationStatus.Cancelled);
        var attached = await fixture.RunAsync("gen", "attach", id);
        attached.ExitCode.ShouldBe(0, attached.ToString());
        attached.Stderr.ShouldContain("[cancelled]");
    }

    [Fact(Timeout = 120_000)]
    public async Task GenFork_PrintsNewIdAndUnknownSourceIsExit3()
    {
        var id = await StartAsync("Fork me");
        (await fixture.RunAsync("gen", "attach", id)).ExitCode.ShouldBe(0);

        var forked = await fixture.RunAsync("gen", "fork", id);
        var missing = await fixture.RunAsync("gen", "fork", "gen_nope");

        forked.ExitCode.ShouldBe(0, forked.ToString());
        var forkId = forked.Stdout.Trim();
        forkId.ShouldNotBe(id);
        (await GetAsync(forkId)).ForkedFrom.ShouldBe(id);
        missing.ExitCode.ShouldBe(3, missing.ToString());
    }

    [Fact(Timeout = 120_000)]
    public async Task GenRm_DeletesAndSecondDeleteIsExit3()
    {
        var id = await StartAsync("Delete me");
        (await fixture.RunAsync("gen", "attach", id)).ExitCode.ShouldBe(0);

        var deleted = await fixture.RunAsync("gen", "rm", id);
        var again = await fixture.RunAsync("gen", "rm", id);

        deleted.ExitCode.ShouldBe(0, deleted.ToString());
        again.ExitCode.ShouldBe(3, again.ToString());
    }

    [Fact(Timeout = 120_000)]
    public async Task GenLs_OverTcpWithKeys_OtherUsersSessionsAreNotFound()
    {
        var alice = await CreateKeyAsync("alice-ls");
        var bob = await CreateKeyAsync("bob-ls");
        var url = fixture.Server.Url.ToString();

        var started = await fixture.RunAsync("gen", "start", "--url", url, "--key", alice, "--model", "scripted", "--max-tokens", "40", "Alice's");
        started.ExitCode.ShouldBe(0, started.ToString());
        var id = started.Stdout.Trim();
        var asBob = await fixture.RunAsync("gen", "show", id, "--url", url, "--key", bob);
        var bobList = await fixture.RunAsync("gen", "ls", "--json", "--url", url, "--key", bob);
        var noKey = await fixture.RunAsync("gen", "ls", "--url", url);

        asBob.ExitCode.ShouldBe(3, asBob.ToString());
        bobList.ExitCode.ShouldBe(0, bobList.ToString());
        bobList.Stdout.ShouldNotContain(id);
        noKey.ExitCode.ShouldBe(1, noKey.ToString());
        noKey.Stderr.ShouldContain("--key");
    }

    [Fact(Timeout = 120_000)]
    public async Task TopOnce_ShowsSessionsAsTableAndJson()
    {
        var id = await StartAsync("Top me");

        var table = await fixture.RunAsync("top", "--once");
        var json = await fixture.RunAsync("top", "--once", "--json");

        table.ExitCode.ShouldBe(0, table.ToString());
        table.Stdout.ShouldContain(id);
        table.Stdout.ShouldContain("holdfast top");
        json.ExitCode.ShouldBe(0, json.ToString());
        using var document = JsonDocument.Parse(json.Stdout);
        document.RootElement.GetProperty("generations").EnumerateArray().ShouldContain(g => g.GetProperty("id").GetString() == id);
        document.RootElement.TryGetProperty("bots", out _).ShouldBeTrue();
    }

    [Fact(Timeout = 60_000)]
    public async Task TopOnce_BadInterval_Exit2()
    {
        var result = await fixture.RunAsync("top", "--once", "--interval", "0");

        result.ExitCode.ShouldBe(2, result.ToString());
    }

    private async Task<string> StartAsync(string prompt, int maxTokens = 40)
    {
        var args = new List<string> { "gen", "start", "--model", "scripted", prompt, "--max-tokens", maxTokens.ToString(System.Globalization.CultureInfo.InvariantCulture) };

        var started = await fixture.RunAsync([.. args]);
        started.ExitCode.ShouldBe(0, started.ToString());
        return started.Stdout.Trim();
    }

    private async Task<Holdfast.Client.Models.Generation> GetAsync(string id)
    {
        using var client = HoldfastClient.ForUnixSocket(fixture.Server.SocketPath);
        return await client.GetGenerationAsync(id);
    }

    private async Task<string> CreateKeyAsync(string user)
    {
        var created = await fixture.RunAsync("keys", "create", "--user", user, "--json");
        created.ExitCode.ShouldBe(0, created.ToString());
        using var json = JsonDocument.Parse(created.Stdout);
        return json.RootElement.GetProperty("key").GetString()!;
    }
}
