using Holdfast.TestHelpers.OpenAi;

namespace Holdfast.Cli.Tests;

/// <summary>Issue 10 item 13: an unknown model fails fast with the reason; <c>--wait</c> says why a generation failed.</summary>
public sealed class UnknownModelTests
{
    [Fact(Timeout = 120_000)]
    public async Task GenStart_UnknownModel_ExitsNonZeroNamingTheModelsServed_NothingCreated()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { Models = ["m-one"] });
        await using var server = await ServerProcess.StartNewAsync(backend: null, new Dictionary<string, string?> { ["Backends__default__BaseUrl"] = emulator.BaseUrl });

        var started = await CliProcess.RunAsync(["gen", "start", "--model", "nope", "hello"], server.Environment);
        var waited = await CliProcess.RunAsync(["gen", "start", "--model", "nope", "--wait", "hello"], server.Environment);
        var listed = await CliProcess.RunAsync(["gen", "ls", "--json"], server.Environment);

        foreach (var result in new[] { started, waited })
        {
            result.ExitCode.ShouldBe(3, result.ToString());
            result.Stderr.ShouldStartWith("holdfast: ");
            result.Stderr.ShouldContain("'nope' does not exist on backend 'default'");
            result.Stderr.ShouldContain("m-one");
            result.Stdout.ShouldBeEmpty();
        }

        listed.Stdout.ShouldContain("\"items\": []");
    }

    [Fact(Timeout = 120_000)]
    public async Task GenStartWait_GenerationFails_PrintsWhyAndExits1()
    {
        await using var server = await ServerProcess.StartNewAsync(backend: null, new Dictionary<string, string?>
        {
            ["Backends__default__BaseUrl"] = OpenAiEmulator.RefusedBaseUrl(),
            ["Backends__default__MaxRetries"] = "0",
        });

        var result = await CliProcess.RunAsync(["gen", "start", "--model", "llama3.2", "--wait", "hello"], server.Environment);

        result.ExitCode.ShouldBe(1, result.ToString());
        result.Stderr.ShouldContain("failed: Could not reach backend 'default'");
    }
}
