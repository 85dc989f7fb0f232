namespace Holdfast.Storage;

/// <summary>
/// Where and how Holdfast keeps its state. Bound from the <c>Storage</c> configuration section and validated at
/// start-up (<see cref="StorageOptionsValidator"/>): a provider, synchronous mode or busy timeout this version cannot
/// use refuses start-up with a message naming the setting.
/// </summary>
public sealed class StorageOptions
{
    public const string SectionName = "Storage";

    /// <summary>The embedded provider, and the only one this version runs on.</summary>
    public const string SqliteProvider = "sqlite";

    /// <summary>PostgreSQL: its schema can be printed (<c>holdfast migrate --print --provider postgres</c>); the adapter is not available yet.</summary>
    public const string PostgresProvider = "postgres";

    /// <summary>
    /// Data directory. When not configured it is <c>$HOLDFAST_DATA</c>, else <c>$XDG_DATA_HOME/holdfast</c>, else
    /// <c>~/.local/share/holdfast</c>, filled in once when the options are bound (see <c>HoldfastConfiguration</c>).
    /// </summary>
    public string? DataDirectory { get; set; }

    /// <summary><c>sqlite</c> (embedded default). <c>postgres</c> is refused at start-up until its adapter exists.</summary>
    public string Provider { get; set; } = SqliteProvider;

    /// <summary>SQLite file name inside the data directory, or an absolute path.</summary>
    public string SqliteFile { get; set; } = "holdfast.db";

    /// <summary>SQLite <c>PRAGMA synchronous</c>: FULL (default: a committed write survives power loss), NORMAL or EXTRA.</summary>
    public string SqliteSynchronous { get; set; } = "FULL";

    /// <summary>How long a writer waits for another process's lock before failing (more than 0, at most an hour).</summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Longest time <c>holdfast serve</c> spends checking the database file at start (<c>PRAGMA quick_check</c>): a
    /// damaged file refuses start-up; a check that takes longer is skipped with a warning. 0 skips it. Default 10 s.
    /// </summary>
    public TimeSpan StartupCheckTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>PostgreSQL connection string, for when <see cref="Provider"/> <c>postgres</c> is available.</summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>Apply pending migrations at start-up (default), or refuse to start until <c>holdfast migrate</c> is run.</summary>
    public bool MigrateOnStart { get; set; } = true;

    /// <summary>
    /// The data directory as a full path. Options bound from configuration always have <see cref="DataDirectory"/>
    /// set (resolved once, at binding, from <c>HOLDFAST_DATA</c> or the XDG data directory when not configured).
    /// </summary>
    /// <exception cref="InvalidOperationException">Options made by hand without a <see cref="DataDirectory"/>.</exception>
    public string ResolveDataDirectory() => !string.IsNullOrWhiteSpace(DataDirectory)
        ? Path.GetFullPath(DataDirectory)
        : throw new InvalidOperationException("Storage:DataDirectory is not set: bind StorageOptions from configuration (AddHoldfastStorage or HoldfastConfiguration.GetStorageOptions), which resolves HOLDFAST_DATA and the XDG data directory.");

    /// <summary>The resolved SQLite file path.</summary>
    public string ResolveSqlitePath() => Path.IsPathRooted(SqliteFile)
        ? SqliteFile
        : Path.Combine(ResolveDataDirectory(), SqliteFile);
}
