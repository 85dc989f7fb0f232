using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Holdfast.Cli.Tests;

/// <summary>
/// One terminal window: <c>bash -c SCRIPT</c> in a working directory (default: the repository root) with its output
/// collected. Used by the README tests, which run the README's shell blocks as a reader would.
/// </summary>
internal sealed class BashProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private BashProcess(Process process)
    {
        _process = process;
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_stdout)
            {
                return _stdout + "\n" + _stderr;
            }
        }
    }

    public static BashProcess Start(string script, IReadOnlyDictionary<string, string?> environment, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo("bash")
        {
            WorkingDirectory = workingDirectory ?? CliProcess.RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(script);
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (name, value) in environment)
        {
            if (value is null)
            {
                info.Environment.Remove(name);
            }
            else
            {
                info.Environment[name] = value;
            }
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("bash did not start");
        var bash = new BashProcess(process);
        process.OutputDataReceived += (_, e) => bash.Append(bash._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => bash.Append(bash._stderr, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return bash;
    }

    public async Task<CliResult> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException e)
        {
            throw new TimeoutException($"A shell window did not finish in {timeout.TotalSeconds} s:\n{Output}", e);
        }

        await _process.WaitForExitAsync(CancellationToken.None); // drains the output readers
        lock (_stdout)
        {
            return new CliResult(_process.ExitCode, _stdout.ToString(), _stderr.ToString());
        }
    }

    /// <summary>Ctrl-C: SIGINT, then waits for the exit (SIGKILL after 30 s).</summary>
    public async Task InterruptAsync()
    {
        if (_process.HasExited)
        {
            return;
        }

        using (var kill = Process.Start("kill", ["-INT", _process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
        }
    }

    /// <summary>Closes the window: SIGKILL to bash and everything it started, then waits for the exit.</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync(CancellationToken.None);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }

    private void Append(StringBuilder builder, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_stdout)
        {
            builder.Append(line).Append('\n');
        }
    }
}
