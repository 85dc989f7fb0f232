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

    [LoggerMessage(3004, LogLevel.Error, "The end of the run of generation session {SessionId} could not be written; recovery restores it at the next start")]
    public static partial void GenerationFinishFailed(ILogger logger, Exception exception, string sessionId);

    [LoggerMessage(3005, LogLevel.Warning, "Generation runner waits for {Count} pending migration(s) (applied at start, or run `holdfast migrate`)")]
    public static partial void GenerationWaitingForMigrations(ILogger logger, int count);

    [LoggerMessage(3101, LogLevel.Trace, "Group commit: {Chunks} chunks, {Finishes} run endings in {ElapsedMs} ms")]
    public static partial void GenerationCommitted(ILogger logger, int chunks, int finishes, long elapsedMs);

    [LoggerMessage(3102, LogLevel.Error, "Group commit of {Chunks} chunks and {Finishes} run endings failed; retrying in {DelayMs} ms")]
    public static partial void GenerationCommitFailed(ILogger logger, Exception exception, int chunks, int finishes, double delayMs);

    [LoggerMessage(3201, LogLevel.Warning, "Backend {Backend}: request failed before the first token; retry {Attempt} in {DelayMs} ms")]
    public static partial void GenerationBackendRetry(ILogger logger, string backend, int attempt, double delayMs);
}
