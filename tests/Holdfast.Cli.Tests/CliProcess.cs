using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace Holdfast.Cli.Tests;

/// <summary>What a finished <c>holdfast</c> process printed and returned.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs the built <c>holdfast</c> CLI as a real process (<c>dotnet …/holdfast.dll</c>).</summary>
public static class CliProcess
{
    private static readonly Lazy<string> Dll = new(FindDll);

    public static string RepositoryRoot { get; } = Path.GetFullPath(Metadata("RepositoryRoot"));

    public static string DllPath => Dll.Value;

    /// <summary>
    /// Starts <c>dotnet holdfast.dll args</c> with <paramref name="environment"/> added to this process's environment.
    /// With <paramref name="wrapper"/> (a command and its arguments, e.g. <see cref="WithUmask"/>) that command is
    /// started instead, with <c>dotnet holdfast.dll args</c> appended: it is expected to exec them in the end, so the
    /// process id stays the server's.
    /// </summary>
    public static Process Start(IEnumerable<string> args, IReadOnlyDictionary<string, string?> environment, bool redirectInput = false, IReadOnlyList<string>? wrapper = null)
    {
        var info = new ProcessStartInfo(wrapper is { Count: > 0 } ? wrapper[0] : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectInput,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (wrapper is { Count: > 0 })
        {
            foreach (var part in wrapper.Skip(1))
            {
                info.ArgumentList.Add(part);
            }

            info.ArgumentList.Add("dotnet");
        }

        info.ArgumentList.Add(DllPath);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var name in new[] { "HOLDFAST_URL", "HOLDFAST_KEY", "HOLDFAST_DATA" })
        {
            info.Environment.Remove(name);
        }

        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        return Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
    }

    /// <summary>A wrapper (see <see cref="Start"/>) that runs the command under <c>umask <paramref name="umask"/></c>.</summary>
    public static IReadOnlyList<string> WithUmask(string umask) => ["sh", "-c", $"umask {umask} && exec \"$@\"", "sh"];

    /// <summary>
    /// A wrapper (see <see cref="Start"/>) that runs the command in a mount namespace of its own (<c>unshare -Urm</c>)
    /// where <paramref name="setup"/> (shell, e.g. mounting a small tmpfs over a test folder) ran first. Only that
    /// process sees those mounts, and they vanish with it; the test reaches them through <c>/proc/PID/root</c>.
    /// </summary>
    public static IReadOnlyList<string> InMountNamespace(string setup) => ["unshare", "-Urm", "sh", "-c", $"{setup} && exec \"$@\"", "sh"];

    /// <summary>Runs the CLI to completion (killed after <paramref name="timeout"/>, default 60 s) and returns what it printed.</summary>
    public static async Task<CliResult> RunAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string?> environment, string? stdin = null, TimeSpan? timeout = null, IReadOnlyList<string>? wrapper = null)
    {
        using var process = Start(args, environment, redirectInput: stdin is not null, wrapper);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }

        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException e)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"holdfast {string.Join(' ', args)} did not exit in time.\nstdout so far: {await stdout}\nstderr: {await stderr}", e);
        }

        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    private static string FindDll()
    {
        var directory = Metadata("HoldfastCliDirectory");
        foreach (var name in new[] { "holdfast.dll", "Holdfast.Cli.dll" })
        {
            var path = Path.GetFullPath(Path.Combine(directory, name));
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new FileNotFoundException($"The holdfast CLI is not built in {directory}.");
    }

    private static string Metadata(string key) =>
        typeof(CliProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;
}
