using Holdfast.Generation;
using Microsoft.Extensions.Logging;

namespace Holdfast;

/// <summary>Generation log messages (event ids 3000–3999). Never log input, output or a backend's API key.</summary>
internal static partial class Log
{
    [LoggerMessage(3001, LogLevel.Information, "Recovery: {Count} generation session(s) left running by a stopped process were restored (policy {Policy})")]
    public static partial void GenerationRecovered(ILogger logger, int count, GenerationRecoveryPolicy policy);

    [LoggerMessage(3002, LogLevel.Error, "Generation dispatcher failed; retrying on the next tick")]
    public static partial void GenerationDispatchFailed(ILogger logger, Exception exception);

    [LoggerMessage(3003, LogLevel.Warning, "Generation session {SessionId} failed on backend {Backend} after {Chunks} chunks: {Error}")]
    public static partial void GenerationRunFailed(ILogger logger, string sessionId, string backend, long chunks, string error);

    [LoggerMessage(3004, LogLevel.Error, "The end of the run of generation session {SessionId} could not be written while stopping; the recovery sweep restores it at the next start")]
    public static partial void GenerationFinishFailed(ILogger logger, Exception exception, string sessionId);

    [LoggerMessage(3005, LogLevel.Warning, "The lease on generation session {SessionId} (fencing token {FencingToken}) was lost: another node or the recovery sweep took it over; this node's run stops and writes nothing more")]
    public static partial void GenerationLeaseLost(ILogger logger, string sessionId, long fencingToken);

    [LoggerMessage(3006, LogLevel.Warning, "The end of the run of generation session {SessionId} could not be written (attempt {Attempt}); retrying in {DelayMs} ms")]
    public static partial void GenerationFinishRetry(ILogger logger, Exception exception, string sessionId, int attempt, double delayMs);

    [LoggerMessage(3007, LogLevel.Error, "The end of the run of generation session {SessionId} could not be written after {Attempts} attempts; the session is handed back and its ending is written as soon as the store answers")]
    public static partial void GenerationHandedBack(ILogger logger, Exception exception, string sessionId, int attempts);

    [LoggerMessage(3008, LogLevel.Information, "The ending of handed-back generation session {SessionId} was written; it is {Status}")]
    public static partial void GenerationHandedBackWritten(ILogger logger, string sessionId, GenerationStatus status);

    [LoggerMessage(3009, LogLevel.Information, "Log retention: the chunk rows of {Count} finished generation session(s) were merged (Generation:LogRetention {Retention})")]
    public static partial void GenerationLogsCompacted(ILogger logger, int count, TimeSpan retention);

    [LoggerMessage(3010, LogLevel.Warning, "Lease renewal of node {NodeId} failed; retrying on the next tick")]
    public static partial void GenerationLeaseRenewalFailed(ILogger logger, Exception exception, string nodeId);

    [LoggerMessage(3011, LogLevel.Warning, "Lease renewal came {GapMs} ms after the previous one (Cluster:RenewInterval {IntervalMs} ms)")]
    public static partial void GenerationLeaseRenewalLate(ILogger logger, long gapMs, long intervalMs);

    [LoggerMessage(3012, LogLevel.Information, "Takeover: the lease of {Count} generation session(s) expired on another node; queued again here: {SessionIds}")]
    public static partial void GenerationTakenOver(ILogger logger, int count, string sessionIds);

    [LoggerMessage(3013, LogLevel.Information, "Claimed generation session {SessionId} (fencing token {FencingToken}, attempt {Attempt})")]
    public static partial void GenerationClaimed(ILogger logger, string sessionId, long fencingToken, int attempt);

    [LoggerMessage(3101, LogLevel.Trace, "Group commit: {Chunks} chunks, {Finishes} run endings in {ElapsedMs} ms")]
    public static partial void GenerationCommitted(ILogger logger, int chunks, int finishes, long elapsedMs);

    [LoggerMessage(3102, LogLevel.Error, "Group commit of {Chunks} chunks and {Finishes} run endings failed; retrying in {DelayMs} ms")]
    public static partial void GenerationCommitFailed(ILogger logger, Exception exception, int chunks, int finishes, double delayMs);

    [LoggerMessage(3103, LogLevel.Error, "Group commit of {Chunks} chunks and {Finishes} run endings given up after {Attempts} attempts over {ElapsedMs} ms (Generation:CommitRetryLimit); its runs are handed back and their lost chunks regenerated")]
    public static partial void GenerationCommitAbandoned(ILogger logger, Exception exception, int chunks, int finishes, int attempts, double elapsedMs);

    [LoggerMessage(3201, LogLevel.Warning, "Backend {Backend}: request failed before the first token; retry {Attempt} in {DelayMs} ms")]
    public static partial void GenerationBackendRetry(ILogger logger, string backend, int attempt, double delayMs);
}
