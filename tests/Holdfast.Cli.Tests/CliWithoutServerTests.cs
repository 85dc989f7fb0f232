using Holdfast.TestHelpers;

namespace Holdfast.Cli.Tests;

/// <summary>What the CLI does before it reaches a server: usage errors and an unreachable server.</summary>
public sealed class CliWithoutServerTests : IDisposable
{
    private readonly TempDirectory _data = new("holdfast-cli");

    private Dictionary<string, string?> Environment => new(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = _data.Path };

    public void Dispose() => _data.Dispose();

    [Fact(Timeout = 60_000)]
    public async Task Help_ListsEveryCommand_Exit0()
    {
        var result = await CliProcess.RunAsync(["--help"], Environment);

        result.ExitCode.ShouldBe(0, result.ToString());
        foreach (var command in new[] { "gen", "bot", "top", "migrate" })
        {
            result.Stdout.ShouldContain(command);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task UnknownCommand_Exit2WithOneLineOnStderr()
    {
        var result = await CliProcess.RunAsync(["gen", "frobnicate"], Environment);

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Stderr.ShouldContain("frobnicate");
        result.Stdout.ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task GenStart_WithoutPrompt_Exit2()
    {
        var result = await CliProcess.RunAsync(["gen", "start", "--model", "scripted"], Environment);

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Stderr.ShouldContain("prompt");
    }

    [Fact(Timeout = 60_000)]
    public async Task GenLs_NoServerOnTheSocket_Exit5NamingTheSocket()
    {
        var result = await CliProcess.RunAsync(["gen", "ls"], Environment);

        result.ExitCode.ShouldBe(5, result.ToString());
        result.Stderr.ShouldContain(Path.Combine(_data.Path, "holdfast.sock"));
        result.Stderr.Trim().Split('\n').Length.ShouldBe(1);
    }

    [Fact(Timeout = 60_000)]
    public async Task BotLs_NothingListeningOnUrl_Exit5()
    {
        var environment = Environment;
        environment["HOLDFAST_URL"] = "http://127.0.0.1:9";

        var result = await CliProcess.RunAsync(["bot", "ls"], environment);

        result.ExitCode.ShouldBe(5, result.ToString());
        result.Stderr.ShouldContain("http://127.0.0.1:9");
    }

    [Fact(Timeout = 60_000)]
    public async Task GenLs_UrlThatIsNotHttp_Exit2()
    {
        var result = await CliProcess.RunAsync(["gen", "ls", "--url", "ftp://example"], Environment);

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Stderr.ShouldContain("--url");
    }
}
