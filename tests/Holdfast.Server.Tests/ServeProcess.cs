using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

/// <summary>
/// The built <c>holdfast serve</c> (src/Holdfast.Cli) as a real child process on a fixed loopback port over a data
/// directory, so a test can SIGKILL it and start it again on the same address.
/// </summary>
public sealed class ServeProcess : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _output = new();

    private ServeProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    /// <summary>The server's process id (for /proc: its memory and open handles).</summary>
    public int ProcessId => _process.Id;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts <c>holdfast serve --urls http://127.0.0.1:PORT --backend scripted</c> and waits until /healthz answers.</summary>
    public static async Task<ServeProcess> StartAsync(string dataDirectory, int port, IDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(CliAssemblyPath());
        foreach (var argument in new[] { "serve", "--urls", $"http://127.0.0.1:{port}", "--backend", "scripted" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["HOLDFAST_DATA"] = dataDirectory;
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start };
        var serve = new ServeProcess(process, new Uri($"http://127.0.0.1:{port}"));
        process.OutputDataReceived += (_, e) => serve.Append(e.Data);
        process.ErrorDataReceived += (_, e) => serve.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var probe = new HttpClient { BaseAddress = serve.BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        await Poll.UntilAsync(
            async () =>
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"holdfast serve exited with {process.ExitCode}: {serve.Output}");
                }

                try
                {
                    return (await probe.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
                catch (TaskCanceledException)
                {
                    return false;
                }
            },
            "holdfast serve to answer /readyz",
            TimeSpan.FromSeconds(60),
            TimeSpan.FromMilliseconds(100));
        return serve;
    }

    /// <summary>
    /// SIGTERM (what systemd, Docker and <c>kill</c> send): the server shuts down gracefully. Completes with the exit
    /// code once the process is gone; throws <see cref="TimeoutException"/> (and kills it) when it is still running after
    /// <paramref name="timeout"/>, so a hung shutdown fails the test instead of being papered over.
    /// </summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException e)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"holdfast serve was still running {timeout.TotalSeconds:0} s after SIGTERM:\n{Output}", e);
        }

        // The overload without a token also waits for the redirected output to drain.
        await _process.WaitForExitAsync(CancellationToken.None);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no shutdown code runs, exactly like a crash.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
    }

    /// <summary>A loopback port that is free now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
