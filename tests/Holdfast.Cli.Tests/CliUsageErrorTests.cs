using System.Net;
using System.Net.Sockets;
using Holdfast.TestHelpers;

namespace Holdfast.Cli.Tests;

/// <summary>Issue 10 item 14: a mistyped flag is named in one line; a port in use is one line naming it, no stack trace.</summary>
public sealed class CliUsageErrorTests
{
    [Theory(Timeout = 60_000)]
    [InlineData("--modle", "--model", "gen", "start", "--modle", "scripted", "hello")]
    [InlineData("--limt", "--limit", "gen", "ls", "--limt", "3")]
    [InlineData("--ownr", "--owner", "bot", "assign", "b1", "--ownr", "carol")]
    public async Task MistypedFlag_OneLineNamingItAndTheClosestFlag_Exit2(string typo, string meant, params string[] args)
    {
        using var data = new TempDirectory("hf-cli-usage");

        var result = await CliProcess.RunAsync(args, new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path });

        result.ExitCode.ShouldBe(2, result.ToString());
        var line = result.Stderr.Trim().Split('\n').ShouldHaveSingleItem(result.ToString());
        line.ShouldStartWith("holdfast: ");
        line.ShouldContain($"'{typo}'");
        line.ShouldContain($"did you mean '{meant}'");
        result.Stdout.ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task Serve_PortInUse_OneLineNamingThePort_NoStackTrace_Exit2()
    {
        using var data = new TempDirectory("hf-cli-port");
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        var result = await CliProcess.RunAsync(
            ["serve", "--urls", $"http://127.0.0.1:{port}", "--socket", "none"],
            new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path });

        result.ExitCode.ShouldBe(2, result.ToString());
        var line = result.Stderr.Trim().Split('\n').ShouldHaveSingleItem(result.ToString());
        line.ShouldContain($"Port {port}");
        line.ShouldContain("already in use");
        (result.Stdout + result.Stderr).ShouldNotContain("   at ");
    }
}
