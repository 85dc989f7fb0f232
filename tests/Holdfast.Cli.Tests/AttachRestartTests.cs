using System.Text;
using Holdfast.Client;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Cli.Tests;

/// <summary><c>holdfast gen attach</c> keeps printing across a restart (graceful, or SIGKILL) of the server.</summary>
public sealed class AttachRestartTests
{
    [Fact(Timeout = 180_000)]
    public async Task GenAttach_ServerStoppedAndRestartedMidStream_PrintsWholeTextOnce()
    {
        var (attached, output, stderr, printedBeforeRestart, stopped) = await AttachAcrossRestartAsync(kill: false);

        stopped.ShouldBe(0, "SIGTERM shuts the server down cleanly");
        attached.ShouldBe(0, stderr);
        output.Generation.Status.ShouldBe(GenerationStatus.Completed);
        output.Printed.TrimEnd('\n').ShouldBe(output.Generation.Output!.TrimEnd('\n'));
        output.Printed.Length.ShouldBeGreaterThan(printedBeforeRestart);
        stderr.ShouldContain("reconnecting");
    }

    [Fact(Timeout = 180_000)]
    public async Task GenAttach_ServerKilledAndRestartedMidStream_PrintsWholeTextOnce()
    {
        var (attached, output, stderr, printedBeforeRestart, _) = await AttachAcrossRestartAsync(kill: true);

        attached.ShouldBe(0, stderr);
        output.Generation.Status.ShouldBe(GenerationStatus.Completed);
        output.Printed.TrimEnd('\n').ShouldBe(output.Generation.Output!.TrimEnd('\n'));
        output.Printed.Length.ShouldBeGreaterThan(printedBeforeRestart);
        stderr.ShouldContain("reconnecting");
        stderr.ShouldContain("[completed]");
    }

    private static async Task<(int ExitCode, (string Printed, Holdfast.Client.Models.Generation Generation) Output, string Stderr, int PrintedBeforeRestart, int? ServerExitCode)> AttachAcrossRestartAsync(bool kill)
    {
        await using var server = await ServerProcess.StartNewAsync(settings: new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Scripted__TokensPerSecond"] = "40",
        });
        var started = await CliProcess.RunAsync(["gen", "start", "--model", "scripted", "--max-tokens", "200", "Survive a crash"], server.Environment);
        started.ExitCode.ShouldBe(0, started.ToString());
        var id = started.Stdout.Trim();
        using var attach = CliProcess.Start(["gen", "attach", id], server.Environment);
        var stdout = new StringBuilder();
        var stderr = attach.StandardError.ReadToEndAsync();
        var reader = Task.Run(async () =>
        {
            var buffer = new char[256];
            int read;
            while ((read = await attach.StandardOutput.ReadAsync(buffer)) > 0)
            {
                lock (stdout)
                {
                    stdout.Append(buffer, 0, read);
                }
            }
        });
        await Poll.UntilAsync(() => Task.FromResult(Length(stdout) > 20), "attach printed some text");

        int? serverExitCode = null;
        if (kill)
        {
            await server.KillAsync();
        }
        else
        {
            serverExitCode = await server.StopAsync();
        }

        var printedBeforeRestart = Length(stdout);
        await server.StartAsync();

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await attach.WaitForExitAsync(cts.Token);
        await reader;
        using var client = HoldfastClient.ForUnixSocket(server.SocketPath);
        var generation = await client.GetGenerationAsync(id);
        return (attach.ExitCode, (stdout.ToString(), generation), await stderr, printedBeforeRestart, serverExitCode);
    }

    private static int Length(StringBuilder builder)
    {
        lock (builder)
        {
            return builder.Length;
        }
    }
}
