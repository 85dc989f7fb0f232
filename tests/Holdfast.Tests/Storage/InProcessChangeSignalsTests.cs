using Holdfast.Storage;

namespace Holdfast.Tests.Storage;

public sealed class InProcessChangeSignalsTests
{
    private static readonly TimeSpan NotYet = TimeSpan.FromMilliseconds(100);

    [Fact(Timeout = 10_000)]
    public async Task WaitAsync_SessionSignalAfterSubscribe_Wakes()
    {
        var signals = new InProcessChangeSignals();
        using var subscription = signals.Subscribe("gen_1");
        var wait = subscription.WaitAsync();

        await Task.Delay(NotYet);
        wait.IsCompleted.ShouldBeFalse("nothing was published yet");
        await signals.PublishAsync(new ChangeSignal(ChangeKind.Log, "gen_1"));

        await wait.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact(Timeout = 10_000)]
    public async Task WaitAsync_SeveralSignalsBetweenWaits_CoalescedIntoOneWake()
    {
        var signals = new InProcessChangeSignals();
        using var subscription = signals.Subscribe("gen_1");

        await signals.PublishAsync(new ChangeSignal(ChangeKind.Log, "gen_1"));
        await signals.PublishAsync(new ChangeSignal(ChangeKind.Status, "gen_1"));
        await signals.PublishAsync(new ChangeSignal(ChangeKind.Log, "gen_1"));

        subscription.WaitAsync().IsCompletedSuccessfully.ShouldBeTrue();
        var second = subscription.WaitAsync();
        await Task.Delay(NotYet);
        second.IsCompleted.ShouldBeFalse("the three signals woke the listener once");
    }

    [Fact(Timeout = 10_000)]
    public async Task Subscribe_SignalPublishedBefore_NotReplayed()
    {
        var signals = new InProcessChangeSignals();
        await signals.PublishAsync(new ChangeSignal(ChangeKind.Log, "gen_1"));
        using var subscription = signals.Subscribe("gen_1");

        var wait = subscription.WaitAsync();
        await Task.Delay(NotYet);

        wait.IsCompleted.ShouldBeFalse();
    }

    [Fact(Timeout = 10_000)]
    public async Task Publish_RoutesBySessionAndKind()
    {
        var signals = new InProcessChangeSignals();
        using var mine = signals.Subscribe("gen_1");
        using var other = signals.Subscribe("gen_2");
        using var runner = signals.Subscribe(null);

        await signals.PublishAsync(new ChangeSignal(ChangeKind.Log, "gen_1"));
        mine.WaitAsync().IsCompletedSuccessfully.ShouldBeTrue();
        var otherWait = other.WaitAsync();
        var runnerWait = runner.WaitAsync();
        await Task.Delay(NotYet);
        otherWait.IsCompleted.ShouldBeFalse("another session's signal");
        runnerWait.IsCompleted.ShouldBeFalse("a log signal does not wake runners");

        await signals.PublishAsync(new ChangeSignal(ChangeKind.StopRequested, "gen_2"));
        await runnerWait.WaitAsync(TimeSpan.FromSeconds(5));
        await otherWait.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact(Timeout = 10_000)]
    public async Task WaitAsync_CancelledThenSignalled_NextWaitReturnsAtOnce()
    {
        var signals = new InProcessChangeSignals();
        using var subscription = signals.Subscribe("gen_1");
        using (var cancel = new CancellationTokenSource(NotYet))
        {
            await Should.ThrowAsync<OperationCanceledException>(() => subscription.WaitAsync(cancel.Token));
        }

        await signals.PublishAsync(new ChangeSignal(ChangeKind.Log, "gen_1"));

        subscription.WaitAsync().IsCompletedSuccessfully.ShouldBeTrue("a signal after a cancelled wait is not lost");
    }

    [Fact(Timeout = 10_000)]
    public async Task WaitAsync_SecondSignalRightAfterTheOneThatWoke_KeptForTheNextWait()
    {
        var signals = new InProcessChangeSignals();
        using var subscription = signals.Subscribe("gen_1");
        var first = subscription.WaitAsync();

        // Two signals back to back: the first completes the wait, the second comes before its continuation runs.
        await signals.PublishAsync(new ChangeSignal(ChangeKind.Log, "gen_1"));
        await signals.PublishAsync(new ChangeSignal(ChangeKind.Status, "gen_1"));
        await first.WaitAsync(TimeSpan.FromSeconds(5));

        await subscription.WaitAsync().WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact(Timeout = 10_000)]
    public async Task WaitAsync_PendingWaitKeptAcrossSignals_EachWaitWokenOnce()
    {
        var signals = new InProcessChangeSignals();
        using var subscription = signals.Subscribe("gen_1");
        using var cancel = new CancellationTokenSource();

        for (var i = 0; i < 3; i++)
        {
            var wait = subscription.WaitAsync(cancel.Token);
            await Task.Delay(10);
            wait.IsCompleted.ShouldBeFalse();
            await signals.PublishAsync(new ChangeSignal(ChangeKind.Log, "gen_1"));
            await wait.WaitAsync(TimeSpan.FromSeconds(5));
        }

        var last = subscription.WaitAsync(cancel.Token);
        await Task.Delay(NotYet);
        last.IsCompleted.ShouldBeFalse("every signal was taken by its own wait");
    }

    [Fact]
    public void Dispose_LastListener_ForgetsTheSession()
    {
        var signals = new InProcessChangeSignals();
        var subscription = signals.Subscribe("gen_1");
        signals.SessionTopicCount.ShouldBe(1);

        subscription.Dispose();

        signals.SessionTopicCount.ShouldBe(0);
    }
}
