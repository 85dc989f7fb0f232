using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Holdfast.Client;
using Holdfast.TestHelpers;

namespace Holdfast.Cli.Tests;

/// <summary>
/// <c>holdfast serve</c> as a child process on a data directory of its own: loopback TCP on a free port and the Unix
/// socket. <see cref="KillAsync"/> is SIGKILL (a crash); <see cref="StartAsync()"/> again restarts it on the same port.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly StringBuilder _log = new();
    private Process? _process;

    public ServerProcess(string? backend = "scripted", IReadOnlyDictionary<string, string?>? settings = null, IReadOnlyList<string>? wrapper = null)
    {
        Backend = backend;
        Settings = settings ?? new Dictionary<string, string?>(StringComparer.Ordinal);
        Wrapper = wrapper;
        Port = FreePort();
    }

    /// <summary>A command the server is started under (see <see cref="CliProcess.Start"/>), e.g. a umask or a mount namespace.</summary>
    public IReadOnlyList<string>? Wrapper { get; }

    /// <summary>The server's process id (the wrapper execs it, so the id is the server's).</summary>
    public int ProcessId => _process?.Id ?? throw new InvalidOperationException("The server was never started.");

    /// <summary>Extra environment of the server process (configuration such as <c>Scripted__TokensPerSecond</c>).</summary>
    public IReadOnlyDictionary<string, string?> Settings { get; }

    public TempDirectory Data { get; } = new("holdfast-cli-e2e");

    public string? Backend { get; }

    public int Port { get; }

    public Uri Url => new($"http://127.0.0.1:{Port}");

    public string SocketPath => Data.File("holdfast.sock");

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>The environment a CLI process needs to reach this server over its socket.</summary>
    public Dictionary<string, string?> Environment => new(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = Data.Path };

    public static async Task<ServerProcess> StartNewAsync(string? backend = "scripted", IReadOnlyDictionary<string, string?>? settings = null, IReadOnlyList<string>? wrapper = null)
    {
        var server = new ServerProcess(backend, settings, wrapper);
        try
        {
            await server.StartAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the server and completes once it answers on its socket.</summary>
    public async Task StartAsync()
    {
        var args = new List<string> { "serve", "--urls", Url.ToString().TrimEnd('/') };
        if (Backend is not null)
        {
            args.AddRange(["--backend", Backend]);
        }

        var environment = Environment;
        foreach (var (name, value) in Settings)
        {
            environment[name] = value;
        }

        _process = CliProcess.Start(args, environment, wrapper: Wrapper);
        var process = _process;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var client = HoldfastClient.ForUnixSocket(SocketPath);
        await Poll.UntilAsync(
            async () =>
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"holdfast serve exited with {process.ExitCode}:\n{Log}");
                }

                if (!File.Exists(SocketPath))
                {
                    return false;
                }

                try
                {
                    return await client.PingAsync();
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            },
            "holdfast serve answers on its socket",
            TimeSpan.FromSeconds(60),
            TimeSpan.FromMilliseconds(100));
    }

    /// <summary>SIGKILL: the server dies without shutting down (a crash).</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    /// <summary>
    /// SIGTERM: the server shuts down gracefully. Completes with its exit code once it is gone; throws
    /// <see cref="TimeoutException"/> (after killing it) when it is still running after <paramref name="timeout"/>
    /// (default 30 s, above the server's 20 s shutdown timeout), so a hung shutdown fails the test.
    /// </summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        var process = _process ?? throw new InvalidOperationException("The server was never started.");
        if (process.HasExited)
        {
            throw new InvalidOperationException($"The server had already exited with {process.ExitCode} before it was asked to stop:\n{Log}");
        }

        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        var limit = timeout ?? TimeSpan.FromSeconds(30);
        using var deadline = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException e)
        {
            await KillAsync();
            throw new TimeoutException($"holdfast serve did not exit within {limit.TotalSeconds:0} s of SIGTERM:\n{Log}", e);
        }

        await process.WaitForExitAsync(CancellationToken.None); // drains the output readers
        return process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
        Data.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
