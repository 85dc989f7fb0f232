using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Holdfast.TestHelpers;
using Xunit.Abstractions;

namespace Holdfast.NodeClient.Tests;

/// <summary>
/// Runs the <c>node --test</c> suites of <c>clients/node</c> (the npm package <c>holdfast</c>) as part of
/// <c>dotnet test</c>: one test case per <c>*.test.js</c> file found (so a new file cannot go dark), each against the
/// real <c>holdfast serve</c> it starts itself. Its packages are installed first with <c>npm ci</c> from the
/// committed lock files (the npm registry only; whatsapp-web.js with <c>PUPPETEER_SKIP_DOWNLOAD=1</c>). A failing Node
/// test fails the case, with the TAP output in the test log; a missing <c>node</c> (20 or later) fails too.
/// </summary>
public sealed partial class NodeClientTests(ITestOutputHelper output)
{
    private static readonly string PackageDirectory = RepositoryRoot.File("clients", "node");
    private static readonly SemaphoreSlim InstallGate = new(1, 1);
    private static bool s_installed;

    /// <summary>Every <c>*.test.js</c> under clients/node/test (outside node_modules), relative to clients/node.</summary>
    public static TheoryData<string> TestFiles()
    {
        var data = new TheoryData<string>();
        foreach (var file in Files())
        {
            data.Add(file);
        }

        return data;
    }

    private static List<string> Files()
    {
        // Not Directory.EnumerateFiles(AllDirectories): node_modules/holdfast is a symlink back to this package.
        var files = new List<string>();
        var pending = new Stack<string>([Path.Combine(PackageDirectory, "test")]);
        while (pending.Count > 0)
        {
            var directory = pending.Pop();
            files.AddRange(Directory.EnumerateFiles(directory, "*.test.js"));
            foreach (var child in Directory.EnumerateDirectories(directory))
            {
                if (Path.GetFileName(child) != "node_modules" && new DirectoryInfo(child).LinkTarget is null)
                {
                    pending.Push(child);
                }
            }
        }

        return files.Select(f => Path.GetRelativePath(PackageDirectory, f).Replace('\\', '/')).Order(StringComparer.Ordinal).ToList();
    }

    [Fact]
    public void TestFiles_CoverTheClientAndBothAdapters()
    {
        var files = Files();

        files.ShouldContain("test/bots.test.js");
        files.ShouldContain("test/generations.test.js");
        files.ShouldContain("test/whatsapp-web/remote-auth.test.js");
        files.ShouldContain("test/baileys/auth-state.test.js");
    }

    [Theory(Timeout = 900_000)]
    [MemberData(nameof(TestFiles))]
    public async Task NodeTestFile_Passes(string file)
    {
        await InstallAsync();

        var (exitCode, text) = await RunAsync(NodeExecutable(), ["--test", "--test-reporter=tap", file], PackageDirectory, TimeSpan.FromMinutes(10));
        output.WriteLine(text);

        var pass = Summary(text, "pass");
        var fail = Summary(text, "fail");
        output.WriteLine($"node --test {file}: {pass} passed, {fail} failed");
        fail.ShouldBe(0, $"node tests failed in {file}:\n{Failures(text)}");
        pass.ShouldBeGreaterThan(0, $"no node test ran in {file}");
        exitCode.ShouldBe(0, $"node --test {file} exited with {exitCode}");
    }

    /// <summary><c>npm ci</c> in the package and in each adapter test folder (their own package.json), once per run.</summary>
    private async Task InstallAsync()
    {
        await InstallGate.WaitAsync();
        try
        {
            if (s_installed)
            {
                return;
            }

            var (code, version) = await RunAsync(NodeExecutable(), ["--version"], PackageDirectory, TimeSpan.FromSeconds(30));
            code.ShouldBe(0, "node is needed to test clients/node");
            int.Parse(version.Trim().TrimStart('v').Split('.')[0], CultureInfo.InvariantCulture).ShouldBeGreaterThanOrEqualTo(20, $"clients/node needs Node 20 or later; this is {version.Trim()}");
            foreach (var directory in new[] { PackageDirectory, Path.Combine(PackageDirectory, "test", "whatsapp-web"), Path.Combine(PackageDirectory, "test", "baileys") })
            {
                var (exitCode, text) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], directory, TimeSpan.FromMinutes(10));
                exitCode.ShouldBe(0, $"npm ci in {directory} failed:\n{text}");
            }

            s_installed = true;
        }
        finally
        {
            InstallGate.Release();
        }
    }

    private static string NodeExecutable() => Environment.GetEnvironmentVariable("HOLDFAST_NODE") ?? "node";

    private static int Summary(string tap, string name)
    {
        // The last "# pass N" / "# fail N" lines are the run's totals.
        var matches = Regex.Matches(tap, $@"^# {name} (\d+)$", RegexOptions.Multiline, TimeSpan.FromSeconds(5));
        return matches.Count == 0 ? 0 : int.Parse(matches[^1].Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static string Failures(string tap) =>
        string.Join('\n', tap.Split('\n').Where(l => l.Contains("not ok", StringComparison.Ordinal) || l.Contains("error:", StringComparison.Ordinal) || l.TrimStart().StartsWith('+') || l.TrimStart().StartsWith('-')).Take(80));

    private static async Task<(int ExitCode, string Output)> RunAsync(string fileName, string[] arguments, string workingDirectory, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["HOLDFAST_CLI_DLL"] = CliAssemblyPath();
        start.Environment["PUPPETEER_SKIP_DOWNLOAD"] = "1";
        start.Environment["CI"] = "true";
        start.Environment["NO_COLOR"] = "1";
        var text = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"'{fileName}' could not be started ({e.Message}); clients/node needs Node 20+ and npm on PATH (or HOLDFAST_NODE).", e);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException e)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} did not finish within {timeout.TotalMinutes:0} min:\n{Snapshot()}", e);
        }

        await process.WaitForExitAsync(CancellationToken.None);
        return (process.ExitCode, Snapshot());

        void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (text)
            {
                text.AppendLine(line);
            }
        }

        string Snapshot()
        {
            lock (text)
            {
                return text.ToString();
            }
        }
    }

    private static string CliAssemblyPath()
    {
        var baseDirectory = new DirectoryInfo(AppContext.BaseDirectory);
        var tfm = baseDirectory.Name;
        var configuration = baseDirectory.Parent!.Name;
        var path = RepositoryRoot.File("src", "Holdfast.Cli", "bin", configuration, tfm, "Holdfast.Cli.dll");
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"The CLI is not built at '{path}'; build the solution in {configuration}.");
    }
}
