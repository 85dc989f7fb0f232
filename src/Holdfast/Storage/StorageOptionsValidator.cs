using System.Globalization;
using Microsoft.Extensions.Options;

namespace Holdfast.Storage;

/// <summary>
/// Refuses <see cref="StorageOptions"/> this version cannot run on, with one sentence per problem that names the
/// setting and says what to do. Registered with <c>ValidateOnStart</c> by <c>AddHoldfastStorage</c>, and used by the
/// CLI's maintenance commands (<c>HoldfastConfiguration.GetStorageOptions</c>), so both refuse the same settings.
/// </summary>
public sealed class StorageOptionsValidator : IValidateOptions<StorageOptions>
{
    /// <summary>Longest accepted <see cref="StorageOptions.BusyTimeout"/>.</summary>
    public static readonly TimeSpan MaxBusyTimeout = TimeSpan.FromHours(1);

    private static readonly string[] SynchronousModes = ["FULL", "NORMAL", "EXTRA"];

    public ValidateOptionsResult Validate(string? name, StorageOptions options)
    {
        var failures = Failures(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Every problem of <paramref name="options"/>; empty when they are usable.</summary>
    public static IReadOnlyList<string> Failures(StorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        var section = StorageOptions.SectionName;
        if (options.Provider is null)
        {
            // The value is not echoed: it may hold a password.
            failures.Add(
                $"{section}:ConnectionString (or --store, {StorageOptions.StoreEnvironmentVariable}) is set but is not a PostgreSQL connection string; " +
                "use postgres://user:password@host:5432/database (or postgresql://…, or Host=…;Username=…;Password=…;Database=…), or leave it empty for the embedded SQLite file.");
        }

        if (!SynchronousModes.Contains(options.SqliteSynchronous?.Trim() ?? string.Empty, StringComparer.OrdinalIgnoreCase))
        {
            failures.Add($"{section}:SqliteSynchronous '{options.SqliteSynchronous}' is not allowed; use FULL (the default), NORMAL or EXTRA.");
        }

        if (options.BusyTimeout <= TimeSpan.Zero || options.BusyTimeout > MaxBusyTimeout)
        {
            failures.Add(string.Create(
                CultureInfo.InvariantCulture,
                $"{section}:BusyTimeout is {options.BusyTimeout:c}; it must be more than 0 and at most {MaxBusyTimeout:c} (e.g. 00:00:10)."));
        }

        if (options.StartupCheckTimeout < TimeSpan.Zero || options.StartupCheckTimeout > MaxBusyTimeout)
        {
            failures.Add(string.Create(
                CultureInfo.InvariantCulture,
                $"{section}:StartupCheckTimeout is {options.StartupCheckTimeout:c}; it must be between 0 (no check) and {MaxBusyTimeout:c} (e.g. 00:00:10)."));
        }

        if (string.IsNullOrWhiteSpace(options.SqliteFile))
        {
            failures.Add($"{section}:SqliteFile is empty; name the database file (default holdfast.db), or remove the setting.");
        }

        return failures;
    }
}
