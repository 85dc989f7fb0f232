using System.Text;
using Holdfast.Client;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Cli.Tests;

/// <summary><c>holdfast gen attach</c> keeps printing across a crash (SIGKILL) and restart of the server.</summary>
public sealed class AttachRestartTests
{
    [Fact(Timeout = 180_000)]
    public async Task GenAttach_ServerKilledAndRestartedMidStream_PrintsWholeTextOnce()
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

        await server.KillAsync();
        var printedBeforeRestart = Length(stdout);
        await server.StartAsync();

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await attach.WaitForExitAsync(cts.Token);
        await reader;
        using var client = HoldfastClient.ForUnixSocket(server.SocketPath);
        var generation = await client.GetGenerationAsync(id);
        attach.ExitCode.ShouldBe(0, await stderr);
        generation.Status.ShouldBe(GenerationStatus.Completed);
        stdout.ToString().TrimEnd('\n').ShouldBe(generation.Output!.TrimEnd('\n'));
        Length(stdout).ShouldBeGreaterThan(printedBeforeRestart);
        (await stderr).ShouldContain("reconnecting");
    }

    private static int Length(StringBuilder builder)
    {
        lock (builder)
        {
            return builder.Length;
        }
    }
}
