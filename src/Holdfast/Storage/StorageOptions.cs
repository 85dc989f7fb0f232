namespace Holdfast.Storage;

/// <summary>Where and how Holdfast keeps its state. Bound from the <c>Storage</c> configuration section.</summary>
public sealed class StorageOptions
{
    public const string SectionName = "Storage";

    /// <summary>Data directory; defaults to <c>$HOLDFAST_DATA</c>, else the XDG data directory (<c>~/.local/share/holdfast</c>).</summary>
    public string? DataDirectory { get; set; }

    /// <summary><c>sqlite</c> (embedded default) or <c>postgres</c>.</summary>
    public string Provider { get; set; } = "sqlite";

    /// <summary>SQLite file name inside the data directory, or an absolute path.</summary>
    public string SqliteFile { get; set; } = "holdfast.db";

    /// <summary>SQLite <c>PRAGMA synchronous</c>: FULL (default: a committed write survives power loss) or NORMAL.</summary>
    public string SqliteSynchronous { get; set; } = "FULL";

    /// <summary>How long a writer waits for another process's lock before failing.</summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>PostgreSQL connection string, when <see cref="Provider"/> is <c>postgres</c>.</summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>Apply pending migrations at start-up (default), or refuse to start until <c>holdfast migrate</c> is run.</summary>
    public bool MigrateOnStart { get; set; } = true;

    /// <summary>The resolved data directory.</summary>
    public string ResolveDataDirectory() => HoldfastPaths.ResolveDataDirectory(DataDirectory);

    /// <summary>The resolved SQLite file path.</summary>
    public string ResolveSqlitePath() => Path.IsPathRooted(SqliteFile)
        ? SqliteFile
        : Path.Combine(ResolveDataDirectory(), SqliteFile);
}
