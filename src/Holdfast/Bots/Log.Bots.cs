using Microsoft.Extensions.Logging;

namespace Holdfast;

/// <summary>
/// The assembly's log messages (one partial class, one file per feature). Event ids: storage 1000–1999,
/// bots 2000–2999, generation 3000–3999. Never log a secret (API keys, bot auth state, pairing tokens).
/// </summary>
internal static partial class Log
{
    [LoggerMessage(2001, LogLevel.Information, "Bot session {SessionId} ({BotType}) start: {Outcome}")]
    public static partial void BotSessionStarted(ILogger logger, string sessionId, string botType, Bots.BotStartOutcome outcome);

    [LoggerMessage(2002, LogLevel.Information, "Bot session {SessionId} ended")]
    public static partial void BotSessionEnded(ILogger logger, string sessionId);

    [LoggerMessage(2003, LogLevel.Error, "Connecting bot session {SessionId} through the {BotType} connector failed")]
    public static partial void BotConnectFailed(ILogger logger, Exception exception, string sessionId, string botType);

    [LoggerMessage(2004, LogLevel.Warning, "Disconnecting bot session {SessionId} through the {BotType} connector failed")]
    public static partial void BotDisconnectFailed(ILogger logger, Exception exception, string sessionId, string botType);

    [LoggerMessage(2005, LogLevel.Information, "Restoring {Count} active bot session(s)")]
    public static partial void BotRestoreStarting(ILogger logger, int count);

    [LoggerMessage(2006, LogLevel.Information, "Restored bot session {SessionId} ({BotType})")]
    public static partial void BotRestored(ILogger logger, string sessionId, string botType);

    [LoggerMessage(2007, LogLevel.Error, "Restoring bot session {SessionId} failed; it stays active and is retried on the next start")]
    public static partial void BotRestoreFailed(ILogger logger, Exception exception, string sessionId);

    [LoggerMessage(2008, LogLevel.Information, "Created the bot auth state key file {Path} (mode 0600); back it up with the database")]
    public static partial void BotAuthKeyFileCreated(ILogger logger, string path);

    [LoggerMessage(2009, LogLevel.Warning, "Bot session {SessionId} has bot type {BotType}, which no registered connector serves; it is not connected")]
    public static partial void BotConnectorMissing(ILogger logger, string sessionId, string botType);

    [LoggerMessage(2010, LogLevel.Error, "Restoring bot sessions failed")]
    public static partial void BotRestoreAborted(ILogger logger, Exception exception);

    [LoggerMessage(2011, LogLevel.Information, "Bot session {SessionId} paired a browser through its pairing link")]
    public static partial void BotWebDevicePaired(ILogger logger, string sessionId);

    [LoggerMessage(2012, LogLevel.Warning, "{Count} bot sessions failed to reconnect; attempt {Attempt} in {Backoff}")]
    public static partial void BotRestoreRetrying(ILogger logger, int count, int attempt, TimeSpan backoff);

    [LoggerMessage(2013, LogLevel.Warning, "Bot session {SessionId} did not reconnect in {Attempts} attempts; parked as failed until it is started again")]
    public static partial void BotParked(ILogger logger, string sessionId, int attempts);

    [LoggerMessage(2014, LogLevel.Information, "Bot session {SessionId} is held by another live node, which runs its connection; not connected here")]
    public static partial void BotHeldElsewhere(ILogger logger, string sessionId);

    [LoggerMessage(2015, LogLevel.Warning, "Took over {Count} bot session(s) whose node stopped renewing or handed them over; node {NodeId} runs them now")]
    public static partial void BotsTakenOver(ILogger logger, int count, string nodeId);

    [LoggerMessage(2016, LogLevel.Warning, "The lease on bot session {SessionId} (epoch {Epoch}) was lost: another node took it over or it was ended; its connection here is dropped and nothing more is written for it")]
    public static partial void BotLeaseLost(ILogger logger, string sessionId, long epoch);

    [LoggerMessage(2017, LogLevel.Information, "Handed {Count} bot session(s) over: node {NodeId} released their leases for the other nodes")]
    public static partial void BotsHandedOver(ILogger logger, int count, string nodeId);

    [LoggerMessage(2018, LogLevel.Warning, "Renewing the bot leases of node {NodeId} failed; retrying on the next tick")]
    public static partial void BotLeaseRenewalFailed(ILogger logger, Exception exception, string nodeId);
}
