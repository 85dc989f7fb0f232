using System.Diagnostics;
using System.Text;
using Holdfast.TestHelpers;

namespace Holdfast.Cli.Tests;

/// <summary>
/// <c>holdfast top</c> in its live mode needs a terminal: the test gives it a pseudo-terminal with util-linux
/// <c>script</c>, waits for the first frame, presses q and expects a clean exit.
/// </summary>
public sealed class TopLiveTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact(Timeout = 120_000)]
    public async Task Top_OnATerminal_RefreshesUntilQIsPressed()
    {
        var started = await fixture.RunAsync("gen", "start", "--model", "scripted", "--max-tokens", "10", "Seen by top");
        started.ExitCode.ShouldBe(0, started.ToString());
        var id = started.Stdout.Trim();
        var holdfast = Path.Combine(Path.GetDirectoryName(CliProcess.DllPath)!, "holdfast");
        var info = new ProcessStartInfo("script")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-qfec", $"'{holdfast}' top --interval 0.2", "/dev/null" })
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["HOLDFAST_DATA"] = fixture.Server.Data.Path;
        info.Environment["TERM"] = "xterm-256color";
        info.Environment.Remove("HOLDFAST_URL");
        using var process = Process.Start(info)!;
        var screen = new StringBuilder();
        var reader = Task.Run(async () =>
        {
            var buffer = new char[1024];
            int read;
            while ((read = await process.StandardOutput.ReadAsync(buffer)) > 0)
            {
                lock (screen)
                {
                    screen.Append(buffer, 0, read);
                }
            }
        });

        await Poll.UntilAsync(() => Task.FromResult(Count(screen, "holdfast top") >= 2), "top drew two frames", TimeSpan.FromSeconds(60));
        await process.StandardInput.WriteAsync("q");
        await process.StandardInput.FlushAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        await reader;

        process.ExitCode.ShouldBe(0, screen.ToString());
        // On an 80-column terminal a long id may wrap inside its column: look for its start.
        screen.ToString().ShouldContain(id[..12]);
    }

    private static int Count(StringBuilder screen, string text)
    {
        lock (screen)
        {
            var all = screen.ToString();
            var count = 0;
            for (var i = all.IndexOf(text, StringComparison.Ordinal); i >= 0; i = all.IndexOf(text, i + 1, StringComparison.Ordinal))
            {
                count++;
            }

            return count;
        }
    }
}
