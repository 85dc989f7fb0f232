namespace Holdfast.Storage;

/// <summary>
/// Where and how Holdfast keeps its state. Bound from the <c>Storage</c> configuration section and validated at
/// start-up (<see cref="StorageOptionsValidator"/>): a provider, synchronous mode or busy timeout this version cannot
/// use refuses start-up with a message naming the setting.
/// </summary>
public sealed class StorageOptions
{
    public const string SectionName = "Storage";

    /// <summary>The embedded provider: a SQLite file in the data directory (the default, when no connection string is set).</summary>
    public const string SqliteProvider = "sqlite";

    /// <summary>PostgreSQL (Supabase included): chosen by a PostgreSQL <see cref="ConnectionString"/>.</summary>
    public const string PostgresProvider = "postgres";

    /// <summary>The environment variable that names the store (<c>HOLDFAST_STORE</c>); it fills <see cref="ConnectionString"/>.</summary>
    public const string StoreEnvironmentVariable = "HOLDFAST_STORE";

    /// <summary>
    /// Data directory. When not configured it is <c>$HOLDFAST_DATA</c>, else <c>$XDG_DATA_HOME/holdfast</c>, else
    /// <c>~/.local/share/holdfast</c>, filled in once when the options are bound (see <c>HoldfastConfiguration</c>).
    /// </summary>
    public string? DataDirectory { get; set; }

    /// <summary>SQLite file name inside the data directory, or an absolute path.</summary>
    public string SqliteFile { get; set; } = "holdfast.db";

    /// <summary>SQLite <c>PRAGMA synchronous</c>: FULL (default: a committed write survives power loss), NORMAL or EXTRA.</summary>
    public string SqliteSynchronous { get; set; } = "FULL";

    /// <summary>How long a writer waits for another process's lock before failing (more than 0, at most an hour).</summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The store: empty for the embedded SQLite file (<see cref="DataDirectory"/>/<see cref="SqliteFile"/>), or a
    /// PostgreSQL connection string (<c>postgres://user:password@host:5432/db</c>, <c>postgresql://…</c>, or the keyword
    /// form <c>Host=…;Username=…;Password=…;Database=…</c>). <c>holdfast … --store</c> and <c>HOLDFAST_STORE</c> set it.
    /// The provider is inferred from it (<see cref="Provider"/>). It holds a password: never log or show it.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>The provider <see cref="ConnectionString"/> names: <c>sqlite</c> when it is empty, <c>postgres</c> for a PostgreSQL one, null when it is neither.</summary>
    public string? Provider => InferProvider(ConnectionString);

    /// <summary>
    /// The provider a store value names: <c>sqlite</c> for none, <c>postgres</c> for a postgres:// or postgresql:// URI
    /// or a keyword string with a host, null for anything else.
    /// </summary>
    public static string? InferProvider(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return SqliteProvider;
        }

        var value = connectionString.Trim();
        if (value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            return PostgresProvider;
        }

        var keywords = value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(part => part.Split('=', 2)[0].Trim())
            .ToList();
        return keywords.Exists(k => k.Equals("Host", StringComparison.OrdinalIgnoreCase) || k.Equals("Server", StringComparison.OrdinalIgnoreCase))
            ? PostgresProvider
            : null;
    }

    /// <summary>
    /// Longest time <c>holdfast serve</c> spends checking the database file at start (<c>PRAGMA quick_check</c>): a
    /// damaged file refuses start-up; a check that takes longer is skipped with a warning. 0 skips it. Default 10 s.
    /// </summary>
    public TimeSpan StartupCheckTimeout { get; set; } = TimeSpan.FromSeconds(10);

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
