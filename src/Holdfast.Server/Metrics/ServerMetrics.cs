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
            description: "Time from receiving a pause/resume/cancel request to answering it.");
        StreamsOpened = _meter.CreateCounter<long>("holdfast.streams.opened", description: "SSE streams opened by readers.");
    }

    public Histogram<double> ControlDuration { get; }

    public Counter<long> StreamsOpened { get; }

    public void Dispose() => _meter.Dispose();
}
