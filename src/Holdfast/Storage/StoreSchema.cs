using Holdfast.Sessions;
using Holdfast.Storage.Migrations;
using Microsoft.Extensions.Options;

namespace Holdfast.Storage;

/// <summary>
/// The one place the schema is brought up to date at start: with <see cref="StorageOptions.MigrateOnStart"/> (default)
/// pending migrations are applied, else start-up is refused while any is pending; a schema that differs from the
/// code or is newer refuses start-up either way (<see cref="StoreSchemaException"/>). Runs once per process: the
/// server calls it before it listens, the hosted <see cref="StorageStartupService"/> and the runner await the same run.
/// </summary>
public sealed class StoreSchema(IStoreAdministration store, IOptions<StorageOptions> options)
{
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

    private async Task<IReadOnlyList<Migration>> RunAsync()
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
