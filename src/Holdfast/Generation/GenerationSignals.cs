using Holdfast.Storage;

namespace Holdfast.Generation;

/// <summary>Which <see cref="ChangeSignal"/>s a committed <see cref="GenerationChange"/> announces.</summary>
internal static class GenerationSignals
{
    /// <summary>
    /// <see cref="ChangeKind.Status"/> for a change, plus <see cref="ChangeKind.Runnable"/> when the session is queued
    /// (runners look for work) and <see cref="ChangeKind.StopRequested"/> when a running session should stop.
    /// </summary>
    public static IEnumerable<ChangeSignal> For(GenerationChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (!change.Changed)
        {
            yield break;
        }

        var session = change.Session;
        yield return new ChangeSignal(ChangeKind.Status, session.Id);
        if (session.Status == GenerationStatus.Queued)
        {
            yield return new ChangeSignal(ChangeKind.Runnable, session.Id);
        }
        else if (session.Status == GenerationStatus.Running && session.DesiredState != GenerationDesiredState.Running)
        {
            yield return new ChangeSignal(ChangeKind.StopRequested, session.Id);
        }
    }

    public static async Task PublishAsync(IChangeSignals signals, GenerationChange change)
    {
        foreach (var signal in For(change))
        {
            await signals.PublishAsync(signal, CancellationToken.None).ConfigureAwait(false);
        }
    }
}
