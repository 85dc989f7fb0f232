namespace Holdfast.Client.Streaming;

/// <summary>How <see cref="HoldfastClient.FollowAsync"/> reconnects when the stream breaks.</summary>
public sealed class FollowOptions
{
    /// <summary>Wait before the first reconnection attempt; doubled after each failed attempt. Default 200 ms.</summary>
    public TimeSpan InitialReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Upper bound of the wait between attempts. Default 5 s.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Give up (rethrow the last error) when no connection succeeded for this long. Default 2 minutes;
    /// <see cref="Timeout.InfiniteTimeSpan"/> retries forever.
    /// </summary>
    public TimeSpan GiveUpAfter { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Treat the connection as dead when nothing (not even a heartbeat, sent every 15 s) arrived for this long.
    /// Default 45 s.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(45);

    /// <summary>Called before each reconnection attempt with the attempt number and the error that caused it.</summary>
    public Action<int, Exception?>? OnReconnecting { get; set; }
}
