using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Holdfast.Tests.Generation;

/// <summary>One log entry a test host wrote.</summary>
internal sealed record CapturedLogEntry(LogLevel Level, string Category, EventId EventId, string Message, Exception? Exception)
{
    public override string ToString() =>
        $"{Level} {Category}[{EventId.Id}]: {Message}{(Exception is null ? string.Empty : " | " + Exception.GetType().Name + ": " + Exception.Message)}";
}

/// <summary>
/// An <see cref="ILoggerProvider"/> that keeps every entry of one test host in memory, so a test can assert what the
/// host logged (no warning at all under load, the error a store fault must produce, ...).
/// </summary>
internal sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLogEntry> _entries = new();

    public IReadOnlyList<CapturedLogEntry> Entries => [.. _entries];

    /// <summary>Entries at <see cref="LogLevel.Warning"/> or above.</summary>
    public IReadOnlyList<CapturedLogEntry> WarningsAndErrors => [.. _entries.Where(e => e.Level >= LogLevel.Warning)];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            ArgumentNullException.ThrowIfNull(formatter);
            owner._entries.Enqueue(new CapturedLogEntry(logLevel, category, eventId, formatter(state, exception), exception));
        }
    }
}
