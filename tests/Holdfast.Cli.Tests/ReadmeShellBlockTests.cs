using System.Text;
using Holdfast.TestHelpers;
using Xunit.Abstractions;

namespace Holdfast.Cli.Tests;

/// <summary>
/// README.md's copy-paste blocks, run as a reader would run them, so they cannot rot. Every <c>```sh</c>/<c>```bash</c>/
/// <c>```shell</c> block outside the Quick start and Tour (those are <see cref="ReadmeTourTests"/>'), and every
/// <c>```js</c> block, runs top to bottom against a real <c>holdfast serve</c> this test starts on loopback (scripted
/// backend, a fresh data directory as <c>HOLDFAST_DATA</c>, the built <c>holdfast</c> on <c>PATH</c>). The blocks share one
/// terminal: the variables a block sets are there in the next one. The working directory looks like a clone (the
/// repository's top-level entries linked into a temporary folder), so what a block writes stays out of the tree.
/// <para>
/// The only substitution: <c>127.0.0.1:7400</c>, the default address, is the test server's free port. <c>curl</c> runs
/// with <c>--fail-with-body</c>, so an HTTP error fails its block. A block that cannot run here is marked in README with
/// <c>&lt;!-- not-run: REASON --&gt;</c> on the line before it; a live stream with <c>&lt;!-- stop-after: N s --&gt;</c>;
/// a block of another language that another test runs with <c>&lt;!-- run-by: TestClass --&gt;</c> (see
/// <see cref="ReadmeBlocks"/>). Any other block that fails, and any code block nothing accounts for, fails this test.
/// </para>
/// </summary>
public sealed class ReadmeShellBlockTests(ITestOutputHelper output)
{
    private const string ReadmeAddress = "127.0.0.1:7400";
    private static readonly TimeSpan BlockTimeout = TimeSpan.FromMinutes(3);

    [Fact(Timeout = 900_000)]
    public async Task ReadmeBlocks_RunAgainstARealServer_EachSucceedsOrIsMarked()
    {
        // Arrange
        var readme = await File.ReadAllTextAsync(Path.Combine(CliProcess.RepositoryRoot, "README.md"));
        var blocks = ReadmeBlocks.Parse(readme);
        var tourBodies = ReadmeTourTests.ParseTour(readme).Select(b => b.Body).ToHashSet(StringComparer.Ordinal);
        var toRun = CheckMarkers(blocks, tourBodies);
        toRun.Count.ShouldBeGreaterThanOrEqualTo(5, "README's runnable blocks were found");

        await using var server = await ServerProcess.StartNewAsync();
        using var clone = new LinkedClone();
        using var shell = new TempDirectory("holdfast-readme-shell");
        var statePath = shell.File("state.sh");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["HOLDFAST_DATA"] = server.Data.Path,
            ["PATH"] = Path.GetDirectoryName(CliProcess.DllPath) + ":" + Environment.GetEnvironmentVariable("PATH"),
            ["HOLDFAST_URL"] = null,
            ["HOLDFAST_KEY"] = null,
            ["HOLDFAST_STORE"] = null,
            ["NO_COLOR"] = "1",
            ["npm_config_audit"] = "false",
            ["npm_config_fund"] = "false",
            ["npm_config_update_notifier"] = "false",
        };
        var failures = new List<string>();
        var report = new StringBuilder();

        // Act: every block in README order.
        foreach (var block in toRun)
        {
            var body = block.Body.Replace(ReadmeAddress, $"127.0.0.1:{server.Port}", StringComparison.Ordinal);
            if (body.Contains("scripts/test.sh", StringComparison.Ordinal) || body.Contains("dotnet test", StringComparison.Ordinal))
            {
                failures.Add($"{block} runs the test suite, which would run this test inside itself: mark it <!-- not-run: REASON -->");
                continue;
            }

            var script = block.Language == "js" ? NodeScript(body, block, clone.Path, statePath) : ShellScript(body, statePath);
            using var window = BashProcess.Start(script, environment, clone.Path);
            var stopAfter = block.Marker is { Name: ReadmeBlocks.StopAfter } marker ? ReadmeBlocks.StopAfterDuration(marker) : (TimeSpan?)null;
            var outcome = await RunAsync(window, stopAfter);
            report.AppendLine($"{block}: {outcome ?? "ok"}");
            if (outcome is not null)
            {
                failures.Add($"{block} {outcome}\n--- block\n{body}--- output\n{Tail(window.Output)}");
            }
        }

        // Assert
        output.WriteLine(report.ToString());
        failures.ShouldBeEmpty(
            $"README blocks failed (fix the block, or mark one that cannot run here with <!-- not-run: REASON -->):\n\n" +
            string.Join("\n\n", failures) + $"\n\nserver log:\n{Tail(server.Log)}");
    }

    /// <summary>
    /// Checks every code block is accounted for (run here, by the tour test, by a named test class, marked not-run, or
    /// not code) and every marker is known and says something; returns the blocks this test runs, in order.
    /// </summary>
    private List<ReadmeBlock> CheckMarkers(List<ReadmeBlock> blocks, HashSet<string> tourBodies)
    {
        var problems = new List<string>();
        var toRun = new List<ReadmeBlock>();
        var testSources = Directory.EnumerateFiles(Path.Combine(CliProcess.RepositoryRoot, "tests"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText)
            .ToList();
        foreach (var block in blocks)
        {
            var marker = block.Marker;
            if (marker is not null && !ReadmeBlocks.Markers.Contains(marker.Name))
            {
                problems.Add($"{block}: unknown marker '<!-- {marker.Name}: … -->' (known: {string.Join(", ", ReadmeBlocks.Markers)})");
                continue;
            }

            if (marker is not null && string.IsNullOrWhiteSpace(marker.Value))
            {
                problems.Add($"{block}: '<!-- {marker.Name}: -->' needs a value (a reason, a duration or a test class)");
                continue;
            }

            switch (marker?.Name)
            {
                case ReadmeBlocks.NotRun:
                    output.WriteLine($"{block}: not run: {marker.Value}");
                    continue;
                case ReadmeBlocks.RunBy:
                    if (!testSources.Any(source => source.Contains($"class {marker.Value}", StringComparison.Ordinal)))
                    {
                        problems.Add($"{block}: '<!-- run-by: {marker.Value} -->' names no test class under tests/");
                    }

                    continue;
                case ReadmeBlocks.StopAfter when !ReadmeBlocks.IsShell(block.Language):
                    problems.Add($"{block}: stop-after is for shell blocks");
                    continue;
                default:
                    break;
            }

            if (ReadmeBlocks.IsText(block.Language))
            {
                continue;
            }

            if (ReadmeBlocks.IsShell(block.Language) && tourBodies.Contains(block.Body))
            {
                if (marker is not null)
                {
                    problems.Add($"{block}: a tour block is run by ReadmeTourTests; it takes no marker");
                }

                continue;
            }

            if (ReadmeBlocks.IsShell(block.Language) || block.Language == "js")
            {
                toRun.Add(block);
                continue;
            }

            problems.Add($"{block}: no test runs this block: mark it '<!-- run-by: TestClass -->' or '<!-- not-run: REASON -->'");
        }

        problems.ShouldBeEmpty(string.Join("\n", problems));
        return toRun;
    }

    /// <summary>Waits for the block; null when it succeeded, else what went wrong.</summary>
    private static async Task<string?> RunAsync(BashProcess window, TimeSpan? stopAfter)
    {
        try
        {
            var result = await window.WaitAsync(stopAfter ?? BlockTimeout);
            return result.ExitCode == 0 ? null : $"exited with {result.ExitCode}";
        }
        catch (TimeoutException)
        {
            await window.StopAsync();
            return stopAfter is null ? $"did not finish within {BlockTimeout.TotalMinutes:0} min" : null;
        }
    }

    /// <summary>The block in a strict shell with the earlier blocks' variables, saving its own for the next.</summary>
    private static string ShellScript(string body, string statePath)
    {
        var script = new StringBuilder();
        script.AppendLine("set -euo pipefail");
        script.AppendLine("set -a");
        script.AppendLine($"if [ -f '{statePath}' ]; then . '{statePath}'; fi");
        script.AppendLine("curl() { command curl --fail-with-body --show-error --max-time 120 \"$@\"; }");
        script.AppendLine(body);
        script.AppendLine($"declare -px | grep -E '^declare -x [A-Za-z_][A-Za-z0-9_]*=' | grep -vE '^declare -x (PWD|OLDPWD|SHLVL|_)=' > '{statePath}' || true");
        return script.ToString();
    }

    /// <summary>A <c>```js</c> block as an ES module file in the clone (where README's npm install put the package), run by node.</summary>
    private static string NodeScript(string body, ReadmeBlock block, string clonePath, string statePath)
    {
        var file = System.IO.Path.Combine(clonePath, $"readme-line-{block.Line}.mjs");
        File.WriteAllText(file, body);
        return $"set -euo pipefail\nset -a\nif [ -f '{statePath}' ]; then . '{statePath}'; fi\nexec node '{file}'\n";
    }

    private static string Tail(string text) => text.Length <= 6000 ? text : "…" + text[^6000..];

    /// <summary>
    /// A temporary folder with a symbolic link to each top-level entry of the repository: a clone to work in. Disposing
    /// removes the links themselves first (never what they point to), then the folder.
    /// </summary>
    private sealed class LinkedClone : IDisposable
    {
        private readonly TempDirectory _folder = new("holdfast-readme-clone");

        public LinkedClone()
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(CliProcess.RepositoryRoot))
            {
                var name = System.IO.Path.GetFileName(entry);
                if (name is not (".git" or "node_modules" or "package.json" or "package-lock.json"))
                {
                    File.CreateSymbolicLink(System.IO.Path.Combine(_folder.Path, name), entry);
                }
            }
        }

        public string Path => _folder.Path;

        public void Dispose()
        {
            Unlink(_folder.Path);
            _folder.Dispose();
        }

        private static void Unlink(string directory)
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(directory))
            {
                var info = new FileInfo(entry);
                if (info.LinkTarget is not null)
                {
                    info.Delete();
                }
                else if (Directory.Exists(entry))
                {
                    Unlink(entry);
                }
            }
        }
    }
}
