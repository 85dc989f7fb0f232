using System.Globalization;
using System.Net.Sockets;
using Holdfast.Sessions;

namespace Holdfast.Storage;

/// <summary>
/// An exclusive advisory lock (an OS file lock released by the kernel when the holder exits or is killed), on a data
/// directory (<c>holdfast.lock</c>) or on a database file (<c>&lt;file&gt;.lock</c> beside it, so two servers with
/// different data directories but the same <c>Storage:SqliteFile</c> cannot both run). <c>holdfast serve</c> holds
/// both for its lifetime; <c>holdfast restore</c> takes the database's while it replaces the file, and refuses when
/// someone else holds it. The holder writes who it is to <c>&lt;lock&gt;.owner</c> (0600) for the refusal message.
/// </summary>
public sealed class DataDirectoryLock : IDisposable
{
    /// <summary>Name of the lock file inside the data directory.</summary>
    public const string FileName = "holdfast.lock";

    /// <summary>Name of the Unix domain socket <c>holdfast serve</c> listens on inside the data directory.</summary>
    public const string SocketFileName = "holdfast.sock";

    /// <summary>Suffix of a database's lock file: <c>holdfast.db</c> is locked through <c>holdfast.db.lock</c>.</summary>
    public const string DatabaseLockSuffix = ".lock";

    private const string OwnerSuffix = ".owner";

    private readonly FileStream _stream;
    private readonly string _lockPath;

    private DataDirectoryLock(string dataDirectory, string lockPath, FileStream stream)
    {
        DataDirectory = dataDirectory;
        _lockPath = lockPath;
        _stream = stream;
    }

    /// <summary>The locked data directory (for a database lock: the directory holding the database).</summary>
    public string DataDirectory { get; }

    /// <summary>
    /// Takes the lock for <paramref name="purpose"/> (e.g. <c>serve</c>), creating the directory when needed; throws
    /// <see cref="DataDirectoryInUseException"/> naming the current holder when another process (or another holder in
    /// this process) has it, and <see cref="StorageNotWritableException"/> when the directory cannot be written.
    /// <paramref name="time"/> stamps the owner note (default: the system clock).
    /// </summary>
    public static DataDirectoryLock Acquire(string dataDirectory, string purpose, TimeProvider? time = null) =>
        TryAcquire(dataDirectory, purpose, time) ?? throw new DataDirectoryInUseException(dataDirectory, ReadOwner(Path.Combine(Path.GetFullPath(dataDirectory), FileName)));

    /// <summary>Takes the lock for <paramref name="purpose"/>, or returns null when it is held elsewhere.</summary>
    public static DataDirectoryLock? TryAcquire(string dataDirectory, string purpose, TimeProvider? time = null)
    {
        var directory = Path.GetFullPath(dataDirectory);
        try
        {
            HoldfastPaths.EnsureDirectory(directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StorageNotWritableException(directory, ex);
        }

        return TryLock(directory, Path.Combine(directory, FileName), purpose, time);
    }

    /// <summary>
    /// Takes the lock of the database file <paramref name="databasePath"/> for <paramref name="purpose"/>; throws
    /// <see cref="DatabaseInUseException"/> naming the current holder when another process (or another holder in this
    /// process) has it, and <see cref="StorageNotWritableException"/> when its directory cannot be written.
    /// </summary>
    public static DataDirectoryLock AcquireDatabase(string databasePath, string purpose, TimeProvider? time = null)
    {
        var path = Path.GetFullPath(databasePath);
        return TryAcquireDatabase(path, purpose, time) ?? throw new DatabaseInUseException(path, ReadOwner(path + DatabaseLockSuffix));
    }

    /// <summary>Takes the lock of the database file <paramref name="databasePath"/>, or returns null when it is held elsewhere.</summary>
    public static DataDirectoryLock? TryAcquireDatabase(string databasePath, string purpose, TimeProvider? time = null)
    {
        var path = Path.GetFullPath(databasePath);
        var directory = Path.GetDirectoryName(path)!;
        try
        {
            HoldfastPaths.EnsureDirectory(directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StorageNotWritableException(directory, ex);
        }

        return TryLock(directory, path + DatabaseLockSuffix, purpose, time);
    }

    private static DataDirectoryLock? TryLock(string directory, string path, string purpose, TimeProvider? time)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, LockFileOptions());
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new StorageNotWritableException(directory, ex);
        }
        catch (IOException ex)
        {
            // Either someone holds the lock (the exclusive open is refused), or the directory cannot be written at all
            // (a read-only file system…), which must not read as "another server is running": a lock file that does
            // not exist is held by nobody, and a directory where a new file cannot be made is not writable.
            if (!File.Exists(path))
            {
                throw new StorageNotWritableException(directory, ex);
            }

            ThrowIfNotWritable(directory);
            return null;
        }

        var owner = string.Create(
            CultureInfo.InvariantCulture,
            $"{purpose} (pid {Environment.ProcessId}, since {(time ?? TimeProvider.System).GetUtcNow():yyyy-MM-dd'T'HH:mm:ss'Z'})");
        try
        {
            HoldfastPaths.WriteOwnerOnly(path + OwnerSuffix, owner);
        }
        catch (IOException)
        {
            // The owner note is only for messages; the lock is what counts.
        }
        catch (UnauthorizedAccessException)
        {
        }

        return new DataDirectoryLock(directory, path, stream);
    }

    private static void ThrowIfNotWritable(string directory)
    {
        var probe = Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $".holdfast-write-probe-{Environment.ProcessId}"));
        try
        {
            using (new FileStream(probe, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None, Options = FileOptions.DeleteOnClose }))
            {
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StorageNotWritableException(directory, ex);
        }
    }

    private static FileStreamOptions LockFileOptions()
    {
        var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = HoldfastPaths.OwnerOnlyFile;
        }

        return options;
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
                return $"the data directory '{directory}' is locked by {ReadOwner(Path.Combine(directory, FileName)) ?? "another process"}";
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
            File.Delete(_lockPath + OwnerSuffix);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        _stream.Dispose();
    }

    /// <summary>Who holds the lock of database <paramref name="databasePath"/>, from its owner note; null when unknown.</summary>
    public static string? ReadDatabaseOwner(string databasePath) => ReadOwner(Path.GetFullPath(databasePath) + DatabaseLockSuffix);

    private static string? ReadOwner(string lockPath)
    {
        try
        {
            var text = File.ReadAllText(lockPath + OwnerSuffix).Trim();
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
        : this(dataDirectory, owner, $"The data directory '{dataDirectory}' is in use by {owner ?? "another process"}.")
    {
    }

    /// <summary>With a whole <paramref name="message"/> of its own (e.g. a refusal that says what to do).</summary>
    public DataDirectoryInUseException(string dataDirectory, string? owner, string message)
        : base(message)
    {
        DataDirectory = dataDirectory;
        Owner = owner;
    }

    /// <summary>The holder's owner note, when known.</summary>
    public string? Owner { get; }

    public string DataDirectory { get; }
}

/// <summary>The database file is held by a running service (or a restore): only one process may own it.</summary>
public sealed class DatabaseInUseException : HoldfastException
{
    public DatabaseInUseException(string databasePath, string? owner)
        : this(databasePath, owner, $"The database '{databasePath}' is in use by {owner ?? "another process"}.")
    {
    }

    /// <summary>With a whole <paramref name="message"/> of its own (e.g. a refusal that says what to do).</summary>
    public DatabaseInUseException(string databasePath, string? owner, string message)
        : base(message)
    {
        DatabasePath = databasePath;
        Owner = owner;
    }

    public string DatabasePath { get; }

    /// <summary>The holder's owner note (<c>holdfast serve (pid 123, since …)</c>), when it left one.</summary>
    public string? Owner { get; }
}

/// <summary>A directory Holdfast must write in (the data directory, or the database's) cannot be written.</summary>
public sealed class StorageNotWritableException : HoldfastException
{
    public StorageNotWritableException(string directory, Exception innerException)
        : base($"Cannot write in '{directory}': {Describe(innerException)}. Holdfast keeps its database, lock and socket there: make it writable, or choose another directory with HOLDFAST_DATA (or Storage:SqliteFile).", innerException)
    {
        Directory = directory;
    }

    public string Directory { get; }

    private static string Describe(Exception exception)
    {
        var message = exception.Message.Trim().TrimEnd('.');
        var path = message.IndexOf(" : '", StringComparison.Ordinal);
        return path > 0 ? message[..path] : message;
    }
}
