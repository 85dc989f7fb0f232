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
    /// Copies the live store to <paramref name="destinationPath"/> as one consistent snapshot while writers go on.
    /// Throws <see cref="StoreFeatureNotSupportedException"/> (pointing at <c>export</c> or the provider's own tool)
    /// where <see cref="SupportsOnlineBackup"/> is false.
    /// </summary>
    Task BackupAsync(string destinationPath, bool overwrite, IProgress<StoreProgress>? progress = null, CancellationToken cancellationToken = default);

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
