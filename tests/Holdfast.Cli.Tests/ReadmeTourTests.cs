using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Holdfast.Client;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Holdfast.TestHelpers.OpenAi;

namespace Holdfast.Cli.Tests;

/// <summary>
/// Runs the README's Quick start and tour as written: every <c>```bash</c> block of both sections, in order, from the
/// repository root (the Quick start's build and PATH line included). "# terminal 1" blocks are the server (the previous
/// one gets Ctrl-C first), "# terminal 3" blocks run in the background (another window), the others run to completion
/// and must exit 0. Each terminal is its own shell: variables carry from block to block of the same terminal only, so
/// a block that uses a variable another terminal set fails here as it would for a reader. The only substitution: the
/// "real model" URL points at an OpenAI-compatible emulator started here instead of a local Ollama.
/// </summary>
public sealed class ReadmeTourTests
{
    private const string OllamaUrl = "http://127.0.0.1:11434/v1";

    [Fact(Timeout = 600_000)]
    public async Task ReadmeTour_EveryBashBlockInOrder_DoesWhatTheReadmeSays()
    {
        var blocks = ParseTour(await File.ReadAllTextAsync(Path.Combine(CliProcess.RepositoryRoot, "README.md")));
        blocks.Count.ShouldBeGreaterThanOrEqualTo(9);
        blocks[0].Body.ShouldContain("dotnet build -c Release src/Holdfast.Cli", customMessage: "the Quick start's build is the only one");
        blocks.Count(b => b.Body.Contains("dotnet build", StringComparison.Ordinal)).ShouldBe(1, "one build, not two");
        blocks.ShouldContain(b => b.Body.Contains(OllamaUrl, StringComparison.Ordinal));
        await using var emulator = await OpenAiEmulator.StartAsync();
        using var data = new TempDirectory("holdfast-tour");
        using var shell = new TempDirectory("holdfast-tour-shell");
        string StatePath(int terminal) => shell.File($"terminal-{terminal}.sh");
        var socket = data.File("holdfast.sock");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["HOLDFAST_DATA"] = data.Path,
            ["PATH"] = Path.GetDirectoryName(CliProcess.DllPath) + ":" + System.Environment.GetEnvironmentVariable("PATH"),
            ["HOLDFAST_URL"] = null,
            ["HOLDFAST_KEY"] = null,
        };
        var ran = new List<(TourBlock Block, CliResult Result)>();
        BashProcess? server = null;
        var windows = new List<BashProcess>();
        try
        {
            foreach (var block in blocks)
            {
                var body = block.Body.Replace(OllamaUrl, emulator.BaseUrl, StringComparison.Ordinal);
                switch (block.Terminal)
                {
                    case 1:
                        if (server is not null)
                        {
                            await server.InterruptAsync();
                            server.ExitCode.ShouldBe(0, $"Ctrl-C should stop the server cleanly.\n{server.Output}");
                        }

                        server = BashProcess.Start(ServerScript(body, StatePath(1)), environment);

                        // The Quick start's block builds first: on a busy machine that alone can take minutes.
                        var building = body.Contains("dotnet build", StringComparison.Ordinal);
                        await WaitUntilServingAsync(socket, server, building ? TimeSpan.FromMinutes(5) : TimeSpan.FromSeconds(60));
                        break;
                    case 3:
                        // The next step acts on what this window watches, so it goes on once the window's stream is open.
                        var opened = await StreamsOpenedAsync(socket);
                        var window3 = BashProcess.Start(WindowScript(body, StatePath(3), saveState: false), environment);
                        windows.Add(window3);
                        await Poll.UntilAsync(
                            async () => window3.HasExited
                                ? throw new InvalidOperationException($"The terminal 3 window exited before it attached:\n{body}\n{window3.Output}")
                                : await StreamsOpenedAsync(socket) > opened,
                            "the terminal 3 window's stream is open on the server (holdfast_streams_opened_total)",
                            TimeSpan.FromSeconds(60),
                            TimeSpan.FromMilliseconds(50));
                        break;
                    default:
                        using (var window = BashProcess.Start(WindowScript(body, StatePath(block.Terminal), saveState: true), environment))
                        {
                            var result = await window.WaitAsync(TimeSpan.FromSeconds(90));
                            result.ExitCode.ShouldBe(0, $"README block failed:\n{body}\n{result}\nserver log:\n{server?.Output}");
                            ran.Add((block, result));
                        }

                        break;
                }
            }

            var id = Regex.Match(await File.ReadAllTextAsync(StatePath(2)), "declare -x id=\"(?<id>[^\"]+)\"", RegexOptions.None, TimeSpan.FromSeconds(1)).Groups["id"].Value;
            id.ShouldNotBeNullOrEmpty();
            var attach = windows.ShouldHaveSingleItem();
            var attached = await attach.WaitAsync(TimeSpan.FromSeconds(120));
            using var client = HoldfastClient.ForUnixSocket(socket);
            var generation = await client.GetGenerationAsync(id);

            // Step 2: started and paused, listed and shown.
            Output(ran, "gen pause").ShouldContain("paused");
            Output(ran, "gen ls").ShouldContain(id);
            Output(ran, "gen show").ShouldContain(id);

            // Steps 3–5: the window attached while paused, streamed on after resume and across two server restarts,
            // and ended with the whole text once: no gap, no repeat.
            attached.ExitCode.ShouldBe(0, attached.ToString());
            generation.Status.ShouldBe(GenerationStatus.Completed);
            attached.Stdout.TrimEnd('\n').ShouldBe(generation.Output!.TrimEnd('\n'));
            attached.Stderr.ShouldContain("reconnecting");
            attached.Stderr.ShouldContain("[completed]");

            // Step 6: the OpenAI-compatible backend answered through the default backend.
            var upstream = emulator.Requests.ShouldHaveSingleItem();
            upstream.Json.GetProperty("model").GetString().ShouldBe("llama3.2");
            Output(ran, "--model llama3.2").ShouldContain(emulator.AnswerText(upstream));

            // Step 7: the bot's QR code was drawn, and the bot is listed.
            Output(ran, "bot qr").ShouldContain("█");
            Output(ran, "bot ls").ShouldContain("support-bot");

            // Step 8: top shows the sessions.
            Output(ran, "top --once").ShouldContain(id);
        }
        finally
        {
            foreach (var window in windows)
            {
                window.Dispose();
            }

            if (server is not null)
            {
                await server.InterruptAsync();
                server.Dispose();
            }
        }
    }

    internal sealed record TourBlock(int Terminal, string Body);

    /// <summary>The bash blocks of the Quick start and Tour sections, each with the terminal its first line names.</summary>
    internal static List<TourBlock> ParseTour(string readme)
    {
        var start = readme.IndexOf("\n## Quick start", StringComparison.Ordinal);
        start.ShouldBeGreaterThan(0, "README has a Quick start section");
        var tour = readme.IndexOf("\n## Tour", start, StringComparison.Ordinal);
        tour.ShouldBeGreaterThan(0, "README has a Tour section after the Quick start");
        var end = readme.IndexOf("\n## ", tour + 5, StringComparison.Ordinal);
        var section = readme[start..(end < 0 ? readme.Length : end)];
        var blocks = new List<TourBlock>();
        foreach (Match match in Regex.Matches(section, "```bash\n(?<body>.*?)```", RegexOptions.Singleline, TimeSpan.FromSeconds(1)))
        {
            var body = match.Groups["body"].Value;
            var terminal = Regex.Match(body, @"^# terminal (?<n>\d)", RegexOptions.None, TimeSpan.FromSeconds(1));
            terminal.Success.ShouldBeTrue($"every tour block starts with '# terminal N':\n{body}");
            blocks.Add(new TourBlock(int.Parse(terminal.Groups["n"].Value, CultureInfo.InvariantCulture), body));
        }

        return blocks;
    }

    private static string Output(List<(TourBlock Block, CliResult Result)> ran, string command) =>
        ran.Last(r => r.Block.Body.Contains(command, StringComparison.Ordinal)).Result.Stdout;

    /// <summary>A window's commands with the shell variables of the earlier windows (and saving its own).</summary>
    private static string WindowScript(string body, string statePath, bool saveState)
    {
        var script = new StringBuilder();
        script.AppendLine("set -euo pipefail");
        script.AppendLine("set -a");
        script.AppendLine($"[ -f '{statePath}' ] && . '{statePath}'");
        script.AppendLine(body);
        if (saveState)
        {
            script.AppendLine($"declare -px | grep -E '^declare -x [a-z_][a-z0-9_]*=' > '{statePath}' || true");
        }

        return script.ToString();
    }

    /// <summary>The server block, with its last command exec'd so Ctrl-C (SIGINT) reaches the server itself.</summary>
    private static string ServerScript(string body, string statePath)
    {
        var lines = body.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => !l.StartsWith('#')).ToList();
        lines[^1].ShouldStartWith("holdfast serve");
        var script = new StringBuilder();
        script.AppendLine("set -e");
        script.AppendLine($"[ -f '{statePath}' ] && . '{statePath}'");
        foreach (var line in lines[..^1])
        {
            script.AppendLine(line);
        }

        script.AppendLine($"declare -px | grep -E '^declare -x [a-z_][a-z0-9_]*=' > '{statePath}' || true");
        script.AppendLine("exec " + lines[^1]);
        return script.ToString();
    }

    /// <summary>The server's <c>holdfast_streams_opened_total</c> (0 before the first stream), read from /metrics over the socket.</summary>
    private static async Task<long> StreamsOpenedAsync(string socket)
    {
        using var http = UnixSocketHttp.Create(socket, TimeSpan.FromSeconds(10));
        var metrics = await http.GetStringAsync("/metrics");
        var match = Regex.Match(metrics, @"^holdfast_streams_opened_total (?<n>[0-9]+)", RegexOptions.Multiline, TimeSpan.FromSeconds(1));
        return match.Success ? long.Parse(match.Groups["n"].Value, CultureInfo.InvariantCulture) : 0;
    }

    private static async Task WaitUntilServingAsync(string socket, BashProcess server, TimeSpan timeout)
    {
        using var client = HoldfastClient.ForUnixSocket(socket);
        await Poll.UntilAsync(
            async () =>
            {
                if (server.HasExited)
                {
                    throw new InvalidOperationException($"holdfast serve exited:\n{server.Output}");
                }

                try
                {
                    return File.Exists(socket) && await client.PingAsync();
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            },
            "the tour's server answers on its socket",
            timeout,
            TimeSpan.FromMilliseconds(100));
    }
}
