using Microsoft.Extensions.Logging;

namespace Holdfast.Server;

/// <summary>Every log message of the server, with stable event ids. Never log a key or a bot's auth state here.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Holdfast server listening on {Addresses}; data directory {DataDirectory}")]
    public static partial void Listening(ILogger logger, string addresses, string dataDirectory);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "Applied {Count} migration(s): {Migrations}")]
    public static partial void MigrationsApplied(ILogger logger, int count, string migrations);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Removed a stale Unix socket left by a previous server at {Path}")]
    public static partial void StaleSocketRemoved(ILogger logger, string path);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "{Method} {Path} failed on the server side: {Reason}")]
    public static partial void RequestFailedOnServer(ILogger logger, string method, string path, string reason);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Error, Message = "Unexpected error in {Method} {Path} (trace id {TraceId})")]
    public static partial void UnexpectedError(ILogger logger, Exception exception, string method, string path, string traceId);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Information, Message = "API key {KeyId} created for user {User} (admin: {Admin})")]
    public static partial void KeyCreated(ILogger logger, string keyId, string user, bool admin);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Information, Message = "API key {KeyId} revoked by {Actor}")]
    public static partial void KeyRevoked(ILogger logger, string keyId, string actor);

    [LoggerMessage(EventId = 4008, Level = LogLevel.Warning, Message = "TCP address {Url} is not a loopback address: every request there still needs an API key")]
    public static partial void NonLoopbackAddress(ILogger logger, string url);

    [LoggerMessage(EventId = 4009, Level = LogLevel.Warning, Message = "Rate limit hit for {Partition} on {Method} {Path}")]
    public static partial void RateLimited(ILogger logger, string partition, string method, string path);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Warning, Message = "The data directory {Directory} has mode {Mode}: other users may read the files in it, such as the database (a data directory Holdfast creates is 0700; chmod 700 it)")]
    public static partial void DataDirectoryShared(ILogger logger, string directory, string mode);

    [LoggerMessage(EventId = 4013, Level = LogLevel.Warning, Message = "The store {Store} cannot be reached at start ({Reason}); serving with /readyz 503 and retrying with backoff until it answers")]
    public static partial void StoreUnreachableAtStart(ILogger logger, string store, string reason);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Warning, Message = "The start-up integrity check (PRAGMA quick_check) of {Path} did not finish within {LimitMs} ms (Storage:StartupCheckTimeout) and was skipped; run `holdfast check` to check the whole file")]
    public static partial void StartupCheckSkipped(ILogger logger, string path, double limitMs);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Warning, Message = "Not ready: {Reason}")]
    public static partial void NotReady(ILogger logger, string reason);
}
