using System.Diagnostics.Metrics;

namespace Holdfast.Server.Metrics;

/// <summary>The server's own instruments (meter <c>Holdfast.Server</c>): control latency and streams.</summary>
internal sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "Holdfast.Server";

    private readonly Meter _meter;

    public ServerMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        ControlDuration = _meter.CreateHistogram<double>(
            "holdfast.control.duration",
            unit: "ms",
            description: "Time from receiving a pause/resume/cancel request to answering it (wait=true: it waited for the runner).");
        StreamsOpened = _meter.CreateCounter<long>("holdfast.streams.opened", description: "SSE streams opened by readers.");
    }

    public Histogram<double> ControlDuration { get; }

    /// <summary>
    /// Records one control call of either API, answered or refused: <c>command</c> (pause|resume|cancel), <c>wait</c>
    /// (whether it waited for the runner, so those latencies stay apart), <c>outcome</c> (ok|error).
    /// </summary>
    public void RecordControl(string command, bool waited, bool succeeded, TimeSpan elapsed) =>
        ControlDuration.Record(
            elapsed.TotalMilliseconds,
            new KeyValuePair<string, object?>("command", command),
            new KeyValuePair<string, object?>("wait", waited ? "true" : "false"),
            new KeyValuePair<string, object?>("outcome", succeeded ? "ok" : "error"));

    public Counter<long> StreamsOpened { get; }

    public void Dispose() => _meter.Dispose();
}
