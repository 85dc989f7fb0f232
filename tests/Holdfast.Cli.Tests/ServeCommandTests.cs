using Holdfast.Client;
using Holdfast.TestHelpers;

namespace Holdfast.Cli.Tests;

/// <summary><c>holdfast serve</c> refusing to start, with an exit code and a line that says why.</summary>
public sealed class ServeCommandTests
{
    [Fact(Timeout = 120_000)]
    public async Task Serve_AnotherServeOnSameDataDirectory_Exit2AlreadyRunning_FirstKeepsServing()
    {
        await using var first = await ServerProcess.StartNewAsync();

        var second = await CliProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0", "--backend", "scripted"], first.Environment);

        second.ExitCode.ShouldBe(2, second.ToString());
        var line = second.Stderr.Split('\n').Where(l => l.StartsWith("holdfast serve: ", StringComparison.Ordinal)).ToList().ShouldHaveSingleItem(second.ToString());
        line.ShouldContain("already running");
        line.ShouldContain("HOLDFAST_DATA");
        using var client = HoldfastClient.ForUnixSocket(first.SocketPath);
        (await client.PingAsync()).ShouldBeTrue("the first server keeps its socket and keeps serving");
    }

    [Fact(Timeout = 120_000)]
    public async Task ClientCommands_ServerSocketPathConfigured_ConnectToThatSocketNotTheDataDirectorys()
    {
        // Arrange: a server whose socket is not in the data directory the client commands see.
        await using var server = await ServerProcess.StartNewAsync();
        using var elsewhere = new TempDirectory("holdfast-cli-socketpath");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["HOLDFAST_DATA"] = elsewhere.Path,
            ["Server__SocketPath"] = server.SocketPath,
        };

        // Act
        var start = await CliProcess.RunAsync(["gen", "start", "--model", "scripted", "over the configured socket"], environment);
        var list = await CliProcess.RunAsync(["gen", "ls", "--quiet"], environment);

        // Assert
        start.ExitCode.ShouldBe(0, start.ToString());
        list.ExitCode.ShouldBe(0, list.ToString());
        list.Stdout.ShouldContain(start.Stdout.Trim());
        File.Exists(Path.Combine(elsewhere.Path, "holdfast.sock")).ShouldBeFalse();
    }

    [Theory(Timeout = 60_000)]
    [InlineData("ftp://x")]
    [InlineData("not a url")]
    [InlineData("http://example.com:7400")]
    public async Task Serve_InvalidUrls_Exit2WithOneClearLine(string urls)
    {
        using var data = new TempDirectory("holdfast-cli-serve");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path };

        var result = await CliProcess.RunAsync(["serve", "--urls", urls], environment);

        result.ExitCode.ShouldBe(2, result.ToString());
        var line = result.Stderr.Trim().Split('\n').ShouldHaveSingleItem(result.ToString());
        line.ShouldStartWith("holdfast serve: ");
        line.ShouldContain($"'{urls}'");
        File.Exists(data.File("holdfast.sock")).ShouldBeFalse("nothing listened");
    }

    [Theory(Timeout = 60_000)]
    [InlineData("Generation__FlushInterval", "00:00:05", "Generation:FlushInterval must be between 1 ms and 1 s")]
    [InlineData("Backends__ollama__BaseUrl", "ftp://no", "Backends:ollama:BaseUrl is 'ftp://no'")]
    [InlineData("Scripted__MaxTokens", "0", "Scripted:MaxTokens must be between")]
    [InlineData("Storage__BusyTimeout", "-00:00:01", "Storage:BusyTimeout")]
    [InlineData("Generation__FlushInterval", "bogus", "Failed to convert configuration value 'bogus' at 'Generation:FlushInterval'")]
    [InlineData("Bots__AuthStateKey", "not-base64!", "Bots:AuthStateKey is not valid base64")]
    [InlineData("Bots__AuthStateKey", "c2hvcnQ=", "Bots:AuthStateKey decodes to 5 bytes")]
    [InlineData("Storage__StartupCheckTimeout", "-00:00:01", "Storage:StartupCheckTimeout")]
    public async Task Serve_InvalidSetting_Exit2WithOneLineNamingItBeforeAnythingIsCreated(string variable, string value, string message)
    {
        using var data = new TempDirectory("holdfast-cli-serve");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path, [variable] = value };

        var result = await CliProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0"], environment);

        result.ExitCode.ShouldBe(2, result.ToString());
        var line = result.Stderr.Trim().Split('\n').ShouldHaveSingleItem(result.ToString());
        line.ShouldStartWith("holdfast serve: ");
        line.ShouldContain(message);
        result.Stdout.ShouldNotContain("Hosting failed");
        Directory.GetFiles(data.Path).ShouldBeEmpty("no database, lock or socket was created");
    }
}
