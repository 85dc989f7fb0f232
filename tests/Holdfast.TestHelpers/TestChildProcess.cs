using System.Diagnostics;

namespace Holdfast.TestHelpers;

/// <summary>
/// Runs <c>tests/Holdfast.TestChild</c> (built with the solution) as a real child process, collects the complete
/// lines it prints (those ending in <c>" ."</c>; a line cut by a kill is ignored), and kills it with SIGKILL.
/// </summary>
public sealed class TestChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly List<string> _errors = [];
    private readonly Lock _gate = new();

    private TestChildProcess(Process process)
    {
        _process = process;
    }

    /// <summary>Starts the child with <paramref name="arguments"/> (a verb and its arguments).</summary>
    public static TestChildProcess Start(params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(ChildAssemblyPath());
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var child = new TestChildProcess(process);
        process.OutputDataReceived += (_, e) => child.OnLine(e.Data, isError: false);
        process.ErrorDataReceived += (_, e) => child.OnLine(e.Data, isError: true);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The complete lines printed so far, without the trailing <c>" ."</c>.</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_gate)
            {
                return _lines.ToList();
            }
        }
    }

    /// <summary>What the child wrote to stderr so far (for failure messages).</summary>
    public string Errors
    {
        get
        {
            lock (_gate)
            {
                return string.Join('\n', _errors);
            }
        }
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Waits until at least <paramref name="count"/> complete lines were printed.</summary>
    public Task WaitForLinesAsync(int count, TimeSpan? timeout = null) =>
        Poll.UntilAsync(
            async () =>
            {
                if (Lines.Count >= count)
                {
                    return true;
                }

                if (_process.HasExited)
                {
                    // Let the redirected output drain before judging what the child printed.
                    await _process.WaitForExitAsync();
                    if (Lines.Count < count)
                    {
                        throw new InvalidOperationException($"The child exited with {_process.ExitCode} after {Lines.Count} line(s): {Errors}");
                    }

                    return true;
                }

                return false;
            },
            $"the child to print {count} lines",
            timeout ?? TimeSpan.FromSeconds(60),
            TimeSpan.FromMilliseconds(2));

    /// <summary>Kills the child with SIGKILL and waits until it is gone. Completes with the lines it printed.</summary>
    public async Task<IReadOnlyList<string>> KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        return Lines;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }

    /// <summary>The child's build output next to this test build: same configuration, same framework.</summary>
    public static string ChildAssemblyPath()
    {
        var baseDirectory = AppContext.BaseDirectory;

        // .../tests/<Project>/bin/<Configuration>/<tfm>/
        var tfm = new DirectoryInfo(baseDirectory).Name;
        var configuration = new DirectoryInfo(baseDirectory).Parent!.Name;
        var path = RepositoryRoot.File("tests", "Holdfast.TestChild", "bin", configuration, tfm, "Holdfast.TestChild.dll");
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"The test child is not built at '{path}'; build the solution (or tests/Holdfast.TestChild) in {configuration}.");
    }

    private void OnLine(string? line, bool isError)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            if (isError)
            {
                _errors.Add(line);
            }
            else if (line.EndsWith(" .", StringComparison.Ordinal))
            {
                _lines.Add(line[..^2]);
            }
        }
    }
}
