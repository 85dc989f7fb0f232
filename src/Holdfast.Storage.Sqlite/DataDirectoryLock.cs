using System.Globalization;
using System.Net.Sockets;
using Holdfast.Sessions;

namespace Holdfast.Storage;

/// <summary>
/// An exclusive advisory lock on a data directory (<c>holdfast.lock</c>, an OS file lock released by the kernel when
/// the holder exits or is killed). <c>holdfast serve</c> holds it for its lifetime; <c>holdfast restore</c> takes it
/// while it replaces the database, and refuses when someone else holds it. The holder writes who it is to
/// <c>holdfast.lock.owner</c> for the refusal message.
/// </summary>
public sealed class DataDirectoryLock : IDisposable
{
    /// <summary>Name of the lock file inside the data directory.</summary>
    public const string FileName = "holdfast.lock";

    /// <summary>Name of the Unix domain socket <c>holdfast serve</c> listens on inside the data directory.</summary>
    public const string SocketFileName = "holdfast.sock";

    private const string OwnerSuffix = ".owner";

    private readonly FileStream _stream;

    private DataDirectoryLock(string dataDirectory, FileStream stream)
    {
        DataDirectory = dataDirectory;
        _stream = stream;
    }

    /// <summary>The locked data directory.</summary>
    public string DataDirectory { get; }

    /// <summary>
    /// Takes the lock for <paramref name="purpose"/> (e.g. <c>serve</c>), creating the directory when needed; throws
    /// <see cref="DataDirectoryInUseException"/> naming the current holder when another process (or another holder in
    /// this process) has it. <paramref name="time"/> stamps the owner note (default: the system clock).
    /// </summary>
    public static DataDirectoryLock Acquire(string dataDirectory, string purpose, TimeProvider? time = null) =>
        TryAcquire(dataDirectory, purpose, time) ?? throw new DataDirectoryInUseException(dataDirectory, ReadOwner(dataDirectory));

    /// <summary>Takes the lock for <paramref name="purpose"/>, or returns null when it is held elsewhere.</summary>
    public static DataDirectoryLock? TryAcquire(string dataDirectory, string purpose, TimeProvider? time = null)
    {
        var directory = HoldfastPaths.EnsureDirectory(Path.GetFullPath(dataDirectory));
        var path = Path.Combine(directory, FileName);
        FileStream stream;
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            stream = new FileStream(path, options);
        }
        catch (IOException)
        {
            return null;
        }

        var owner = string.Create(
            CultureInfo.InvariantCulture,
            $"{purpose} (pid {Environment.ProcessId}, since {(time ?? TimeProvider.System).GetUtcNow():yyyy-MM-dd'T'HH:mm:ss'Z'})");
        try
        {
            File.WriteAllText(path + OwnerSuffix, owner);
        }
        catch (IOException)
        {
            // The owner note is only for messages; the lock is what counts.
        }
        catch (UnauthorizedAccessException)
        {
        }

        return new DataDirectoryLock(directory, stream);
    }

    /// <summary>
    /// Whether a running service (or a restore) uses the data directory: its lock is held, or its Unix socket accepts
    /// connections. Returns a sentence naming the holder, or null when the directory is free.
    /// </summary>
    public static async Task<string?> ProbeAsync(string dataDirectory, CancellationToken cancellationToken = default)
    {
        var directory = Path.GetFullPath(dataDirectory);
        if (Directory.Exists(directory))
        {
            var probe = TryAcquire(directory, "probe");
            if (probe is null)
            {
                return $"the data directory '{directory}' is locked by {ReadOwner(directory) ?? "another process"}";
            }

            probe.Dispose();
        }

        var socketPath = Path.Combine(directory, SocketFileName);
        if (File.Exists(socketPath) && Socket.OSSupportsUnixDomainSockets)
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(2));
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), timeout.Token);
                return $"a Holdfast service is listening on '{socketPath}'";
            }
            catch (SocketException)
            {
                // A stale socket file: nobody listens.
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
        }

        return null;
    }

    public void Dispose()
    {
        try
        {
            File.Delete(Path.Combine(DataDirectory, FileName + OwnerSuffix));
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        _stream.Dispose();
    }

    private static string? ReadOwner(string directory)
    {
        try
        {
            var text = File.ReadAllText(Path.Combine(directory, FileName + OwnerSuffix)).Trim();
            return text.Length == 0 ? null : text;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>The data directory is in use by a running service (or another restore).</summary>
public sealed class DataDirectoryInUseException : HoldfastException
{
    public DataDirectoryInUseException(string dataDirectory, string? owner)
        : base($"The data directory '{dataDirectory}' is in use by {owner ?? "another process"}.")
    {
        DataDirectory = dataDirectory;
    }

    public string DataDirectory { get; }
}
