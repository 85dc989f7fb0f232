using Holdfast.Sessions;

namespace Holdfast.Server.Hosting;

/// <summary>
/// An exclusive lock on <c>holdfast.lock</c> in the data directory, held for the life of the server, so two servers
/// never own one data directory. The OS releases it when the process dies (even by SIGKILL), so a stale socket left
/// by a crashed server can be deleted safely once the lock is ours.
/// </summary>
internal sealed class DataDirectoryLock : IDisposable
{
    private readonly FileStream _stream;

    private DataDirectoryLock(FileStream stream, string path)
    {
        _stream = stream;
        Path = path;
    }

    public string Path { get; }

    /// <summary>Takes the lock or throws <see cref="ServerStartupException"/> naming the other server.</summary>
    public static DataDirectoryLock Acquire(string dataDirectory)
    {
        var path = System.IO.Path.Combine(dataDirectory, "holdfast.lock");
        try
        {
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            using (var writer = new StreamWriter(stream, leaveOpen: true))
            {
                writer.Write(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            stream.Flush(flushToDisk: true);
            return new DataDirectoryLock(stream, path);
        }
        catch (IOException ex)
        {
            throw new ServerStartupException(
                $"Another Holdfast server is already running on the data directory '{dataDirectory}'. " +
                "Stop it first, or point this one at another directory with HOLDFAST_DATA.",
                ex);
        }
    }

    public void Dispose() => _stream.Dispose();
}

/// <summary>The server cannot start; the message says why and what to do.</summary>
public sealed class ServerStartupException(string message, Exception? innerException = null) : HoldfastException(message, innerException);
