using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>Collects every histogram measurement of the Holdfast meters while a scenario runs.</summary>
internal sealed class HoldfastMeters : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, ConcurrentQueue<double>> _values = new(StringComparer.Ordinal);

    public HoldfastMeters()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name.StartsWith("Holdfast", StringComparison.Ordinal) && instrument.GetType().Name.StartsWith("Histogram", StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => Add(instrument.Name, value));
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => Add(instrument.Name, value));
        _listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => Add(instrument.Name, value));
        _listener.Start();
    }

    /// <summary>The values recorded by the first instrument whose name contains <paramref name="fragment"/>, or none.</summary>
    public IReadOnlyList<double> Find(string fragment) =>
        _values.Where(p => p.Key.Contains(fragment, StringComparison.Ordinal)).Select(p => p.Value.ToList()).FirstOrDefault() ?? [];

    public void Dispose() => _listener.Dispose();

    private void Add(string instrument, double value) => _values.GetOrAdd(instrument, _ => new ConcurrentQueue<double>()).Enqueue(value);
}
