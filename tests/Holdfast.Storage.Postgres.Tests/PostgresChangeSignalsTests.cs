using Holdfast.TestHelpers;

namespace Holdfast.Storage.Postgres.Tests;

/// <summary>
/// The wake-ups of <see cref="PostgresChangeSignals"/> as the generation dispatcher uses them: it waits on a signal,
/// its own wake-up and the poll interval at once and cancels the waits that lost, so a signal after a cancelled wait
/// must still wake the next one (cross-node pauses waited for the next poll when it did not).
/// </summary>
public sealed class PostgresChangeSignalsTests : IAsyncLifetime
{
    private static readonly TimeSpan NotYet = TimeSpan.FromMilliseconds(100);
    private TestDatabase _db = null!;
    private PostgresStore _nodeA = null!;
    private PostgresStore _nodeB = null!;

    public async Task InitializeAsync()
    {
        _db = await TestPostgres.CreateDatabaseAsync();
        _nodeA = new PostgresStore(_db.Uri, TimeProvider.System);
        _nodeB = new PostgresStore(_db.Uri, TimeProvider.System);
        await _nodeA.Administration.MigrateAsync();
    }

    public async Task DisposeAsync()
    {
        await _nodeA.DisposeAsync();
        await _nodeB.DisposeAsync();
        await _db.DisposeAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task WaitAsync_CancelledThenSignalledFromAnotherNode_NextWaitWakes()
    {
        await ((PostgresChangeSignals)_nodeA.Signals).Listening;
        using var dispatcher = _nodeA.Signals.Subscribe(null);
        using var delivered = _nodeA.Signals.Subscribe("gen_paused");
        using (var poll = new CancellationTokenSource(NotYet))
        {
            await Should.ThrowAsync<OperationCanceledException>(() => dispatcher.WaitAsync(poll.Token));
        }

        // The pause arrives while the dispatcher is between two waits (mid-pass): node A has received the
        // notification (its session subscriber, signalled after the node-wide ones, woke) before the next wait starts.
        await _nodeB.Signals.PublishAsync(new ChangeSignal(ChangeKind.StopRequested, "gen_paused"));
        await delivered.WaitAsync().WaitAsync(TimeSpan.FromSeconds(10));

        await dispatcher.WaitAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact(Timeout = 60_000)]
    public async Task WaitAsync_CancelledThenSignalledOnThisNode_NextWaitReturnsAtOnce()
    {
        using var follower = _nodeA.Signals.Subscribe("gen_followed");
        using (var poll = new CancellationTokenSource(NotYet))
        {
            await Should.ThrowAsync<OperationCanceledException>(() => follower.WaitAsync(poll.Token));
        }

        await _nodeA.Signals.PublishAsync(new ChangeSignal(ChangeKind.Log, "gen_followed"));

        follower.WaitAsync().IsCompletedSuccessfully.ShouldBeTrue("a signal after a cancelled wait is not lost");
    }
}
