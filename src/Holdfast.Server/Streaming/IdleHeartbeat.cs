using System.Threading.Channels;

namespace Holdfast.Server.Streaming;

/// <summary>The wait every live stream makes: for its next item, with a heartbeat while there is none.</summary>
internal static class IdleHeartbeat
{
    /// <summary>
    /// Completes with true once <paramref name="reader"/> has an item to read, or false once it is completed (nothing
    /// more will come). Every <paramref name="interval"/> that passes with nothing to read, <paramref name="onIdle"/> runs
    /// (an SSE heartbeat comment, so proxies and clients see the stream is alive). Throws
    /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    public static async Task<bool> WaitToReadAsync<T>(ChannelReader<T> reader, TimeSpan interval, Func<Task> onIdle, CancellationToken cancellationToken)
    {
        while (true)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            idle.CancelAfter(interval);
            try
            {
                return await reader.WaitToReadAsync(idle.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                await onIdle();
            }
        }
    }
}
