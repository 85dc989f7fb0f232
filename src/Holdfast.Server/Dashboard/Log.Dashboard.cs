using Microsoft.Extensions.Logging;

namespace Holdfast.Server;

/// <summary>Log messages of the web dashboard (event ids 41xx). Never a key, a cookie or a login token.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Dashboard sign-in of user {User} (with {Method})")]
    public static partial void DashboardSignedIn(ILogger logger, string user, string method);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Warning, Message = "Dashboard sign-in refused from {Address}: {Reason}")]
    public static partial void DashboardSignInRefused(ILogger logger, string address, string reason);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Information, Message = "One-time dashboard login link created for user {User}; it expires at {ExpiresAt:u}")]
    public static partial void DashboardLinkCreated(ILogger logger, string user, DateTimeOffset expiresAt);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Warning, Message = "The dashboard's live sessions feed failed to refresh; it retries on the next tick")]
    public static partial void DashboardFeedFailed(ILogger logger, Exception exception);
}
