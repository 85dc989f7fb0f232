using Holdfast.Sessions;
using Holdfast.Storage.Migrations;

namespace Holdfast.Storage;

/// <summary>How many sessions of <paramref name="Kind"/> are in <paramref name="Status"/> (wire name).</summary>
public sealed record SessionCount(SessionKind Kind, string Status, long Count);

/// <summary>Progress of a long copy (backup, restore, import): units done out of the total.</summary>
public sealed record StoreProgress(long Done, long Total, string Phase);

/// <summary>
/// One row of one table in an export, with column names as in the schema (identical across providers) and values as
/// <see cref="string"/>, <see cref="long"/>, <see cref="double"/>, <see cref="byte"/>[] (blobs, still encrypted),
/// <see cref="DateTimeOffset"/> (timestamps, UTC) or null.
/// </summary>
public sealed record StoreRecord(string Table, IReadOnlyDictionary<string, object?> Values);

/// <summary>What an integrity check of the store concluded.</summary>
public enum StoreIntegrity
{
    /// <summary>The check ran to the end and found nothing wrong.</summary>
    Sound,

    /// <summary>The check found damage; <see cref="StoreCheck.Problems"/> says what.</summary>
    Damaged,

    /// <summary>The check did not finish within its time limit (a very large store): nothing is known.</summary>
    Unfinished,

    /// <summary>There was nothing to check (no database file yet).</summary>
    NotChecked,
}

/// <summary>How thorough <see cref="IStoreAdministration.CheckIntegrityAsync"/> is.</summary>
public enum StoreCheckDepth
{
    /// <summary>Cheap enough for every start-up (SQLite <c>quick_check</c>; PostgreSQL: one row of every table).</summary>
    Quick,

    /// <summary>What <c>holdfast check</c> runs (SQLite <c>integrity_check</c>; PostgreSQL: every row of every table), with the schema.</summary>
    Full,
}

/// <summary>
/// What <see cref="IStoreAdministration.CheckIntegrityAsync"/> found: the verdict, the problems (empty unless
/// <see cref="StoreIntegrity.Damaged"/>), what was run (<paramref name="Method"/>, for people), and for a
/// <see cref="StoreCheckDepth.Full"/> check the migrations and how many this code knows (null and 0 for a quick one).
/// </summary>
public sealed record StoreCheck(string Location, StoreIntegrity Integrity, IReadOnlyList<string> Problems, string Method, MigrationStatus? Migrations, int KnownMigrations = 0)
{
    /// <summary>True when nothing is known to be wrong and the schema is usable by this code (pending migrations are fine).</summary>
    public bool IsHealthy => Integrity != StoreIntegrity.Damaged && (Migrations is null || Migrations.Problems.Count == 0);
}

/// <summary>What <see cref="IStoreAdministration.BackupAsync"/> wrote: from where, to where, its size and its applied migrations.</summary>
public sealed record StoreBackup(string Source, string Destination, long Bytes, int AppliedMigrations);

/// <summary>What <see cref="IStoreAdministration.RestoreAsync"/> did: the copy of the replaced store (null when there was none) and migrations the backup still needs.</summary>
public sealed record StoreRestore(string Source, string Target, string? PreviousCopy, int PendingMigrations);

/// <summary>
/// Port: operating the store itself (the commands <c>migrate</c>, <c>status</c>, <c>export</c>, <c>import</c>, the
/// readiness probe and <c>/metrics</c>). Implemented once per provider.
/// </summary>
public interface IStoreAdministration
{
    /// <summary>The provider's name: <c>sqlite</c> or <c>postgres</c>.</summary>
    string Provider { get; }

    /// <summary>Where the store is, for people: the database file, or the connection with its password redacted.</summary>
    string Location { get; }

    /// <summary>
    /// Applies pending migrations in order, each in its own transaction recorded with its checksum in
    /// <c>schema_migrations</c>; concurrent callers (several nodes) apply each migration once. Refuses with
    /// <see cref="StoreSchemaException"/> a schema that differs from the code or is newer. Returns what it applied.
    /// </summary>
    Task<IReadOnlyList<Migration>> MigrateAsync(CancellationToken cancellationToken = default);

    /// <summary>Compares <c>schema_migrations</c> with the code's migrations, reading only (a probe never takes a write lock).</summary>
    Task<MigrationStatus> GetSchemaStatusAsync(CancellationToken cancellationToken = default);

    /// <summary>Completes when the store answers; throws <see cref="StoreUnavailableException"/> when it does not.</summary>
    Task PingAsync(CancellationToken cancellationToken = default);

    /// <summary>Sessions by kind and status (indexed counts; no scan of the log).</summary>
    Task<IReadOnlyList<SessionCount>> CountSessionsAsync(CancellationToken cancellationToken = default);

    /// <summary>True when <see cref="BackupAsync"/> makes an online copy (SQLite); false where the provider's own tools do it.</summary>
    bool SupportsOnlineBackup { get; }

    /// <summary>
    /// Copies the live store to <paramref name="destinationPath"/> as one consistent snapshot while writers go on, and
    /// completes once the copy is durable and has passed its integrity check. Throws
    /// <see cref="StoreFeatureNotSupportedException"/> (pointing at <c>export</c> or the provider's own tool) where
    /// <see cref="SupportsOnlineBackup"/> is false.
    /// </summary>
    Task<StoreBackup> BackupAsync(string destinationPath, bool overwrite, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces the store with the backup at <paramref name="backupPath"/> (checked first; the replaced store is kept
    /// beside it). Refuses while a server holds the store (<see cref="HoldForServer"/>), and, unless
    /// <paramref name="force"/>, while a server runs on the data directory. Throws
    /// <see cref="StoreFeatureNotSupportedException"/> where <see cref="SupportsOnlineBackup"/> is false.
    /// </summary>
    Task<StoreRestore> RestoreAsync(string backupPath, bool force, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Checks the stored data itself. <see cref="StoreCheckDepth.Quick"/> is for start-up and gives up after
    /// <paramref name="limit"/> (<see cref="StoreIntegrity.Unfinished"/>); <see cref="StoreCheckDepth.Full"/> reads
    /// everything and also compares the migrations. SQLite: <c>PRAGMA quick_check</c> / <c>integrity_check</c> on the
    /// file. PostgreSQL (no <c>amcheck</c> needed): reads one row (quick) or every row (full) of every table, so a page
    /// the server cannot read (<c>XX001</c>/<c>XX002</c>) is reported as damage; the server's own checksums and
    /// <c>amcheck</c> go deeper. Throws <see cref="StoreUnavailableException"/> when the store cannot be reached.
    /// </summary>
    Task<StoreCheck> CheckIntegrityAsync(StoreCheckDepth depth, TimeSpan? limit = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Why the store is not to be trusted (damage seen on a read or a write since this process started), or null.
    /// SQLite remembers a damaged page until the process restarts; PostgreSQL reports damage per query and keeps none.
    /// </summary>
    string? KnownDamage { get; }

    /// <summary>Why writes fail right now (a full disk), or null: set by a failed write, cleared by the next that commits.</summary>
    string? WriteFailure { get; }

    /// <summary>
    /// Commits (or, where a provider cannot write without changing data, checks) a write that changes nothing, and
    /// completes with the reason writes fail (also kept in <see cref="WriteFailure"/>), or null when they work.
    /// SQLite rewrites <c>PRAGMA user_version</c>; PostgreSQL checks that the server accepts writes (not a standby, not
    /// read-only).
    /// </summary>
    Task<string?> CheckWritableAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Holds the store for one server process until the result is disposed, so a second server cannot use it at the
    /// same time where that would be unsafe: SQLite locks the database file (throws <see cref="DatabaseInUseException"/>
    /// naming the holder); on PostgreSQL many nodes share the database, so nothing is held.
    /// </summary>
    IDisposable HoldForServer(string purpose);

    /// <summary>How large the stored data is, in bytes (the file and its WAL; the database on PostgreSQL), 0 when there is none yet.</summary>
    Task<long> MeasureSizeAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Every row of every Holdfast table except <c>schema_migrations</c>, table by table in dependency order (parents
    /// first), streamed from one consistent snapshot.
    /// </summary>
    IAsyncEnumerable<StoreRecord> ExportAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Loads <paramref name="records"/> into an empty store (refuses a store holding any session, key or audit event
    /// with <see cref="SessionConflictException"/>, writing nothing), keeping ids, sequence numbers and hashes.
    /// Returns the number of rows per table.
    /// </summary>
    Task<IReadOnlyDictionary<string, long>> ImportAsync(IAsyncEnumerable<StoreRecord> records, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default);
}
