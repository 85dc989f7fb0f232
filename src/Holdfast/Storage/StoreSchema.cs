using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Microsoft.Extensions.Options;

namespace Holdfast.Storage;

/// <summary>
/// The one place the schema is brought up to date at start: with <see cref="StorageOptions.MigrateOnStart"/> (default)
/// pending migrations are applied, else start-up is refused while any is pending; a schema that differs from the
/// code or is newer refuses start-up either way (<see cref="StoreSchemaException"/>). Runs once per process: the
/// server calls it before it listens, the hosted <see cref="StorageStartupService"/> and the runner await the same run.
/// A networked store (PostgreSQL) that cannot be reached is retried with backoff (0.5 s doubling to 30 s) until it
/// answers, so a node started before its database waits (its <c>/readyz</c> says 503) instead of crashing; a wrong
/// password, a missing database or a schema problem still fails at once.
/// </summary>
public sealed class StoreSchema(IStoreAdministration store, IOptions<StorageOptions> options, TimeProvider time)
{
    /// <summary>Longest wait between two attempts to reach a store that does not answer.</summary>
    internal static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    private readonly Lock _gate = new();
    private Task<IReadOnlyList<Migration>>? _run;

    /// <summary>
    /// Applies (or checks) the schema the first time it is called and returns the migrations it applied; later calls
    /// return the same task. <paramref name="cancellationToken"/> stops only the caller's wait.
    /// </summary>
    public Task<IReadOnlyList<Migration>> EnsureAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _run ??= Task.Run(RunAsync, CancellationToken.None);
        }

#pragma warning disable VSTHRD003 // The task is ours, started once above.
        return _run.WaitAsync(cancellationToken);
#pragma warning restore VSTHRD003
    }

    /// <summary>True once the schema is current (the first <see cref="EnsureAsync"/> completed successfully).</summary>
    public bool IsReady => _run is { IsCompletedSuccessfully: true };

    /// <summary>True when the store is reached over the network (it may be down for a while) rather than a local file.</summary>
    public bool RetriesUnreachableStore => !string.Equals(store.Provider, StorageOptions.SqliteProvider, StringComparison.Ordinal);

    private async Task<IReadOnlyList<Migration>> RunAsync()
    {
        var delay = TimeSpan.FromMilliseconds(500);
        while (true)
        {
            try
            {
                return await RunOnceAsync();
            }
            catch (StoreUnavailableException) when (RetriesUnreachableStore)
            {
                await Task.Delay(delay, time);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
            }
        }
    }

    private async Task<IReadOnlyList<Migration>> RunOnceAsync()
    {
        if (options.Value.MigrateOnStart)
        {
            return await store.MigrateAsync();
        }

        var status = await store.GetSchemaStatusAsync();
        if (status.Problems.Count > 0)
        {
            throw new StoreSchemaException(string.Join(Environment.NewLine, status.Problems));
        }

        if (status.Pending.Count > 0)
        {
            throw new StoreSchemaException(
                $"The database has {status.Pending.Count} pending migration(s) ({string.Join(", ", status.Pending.Select(m => m.Id))}) " +
                "and Storage:MigrateOnStart is off: run `holdfast migrate` first.");
        }

        return [];
    }
}
