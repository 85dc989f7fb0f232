using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Holdfast.Server.Metrics;

/// <summary>
/// Collects every instrument of the <c>Holdfast*</c> meters (core and server) with a <see cref="MeterListener"/> and
/// renders them in the Prometheus text format: counters as <c>_total</c>, histograms as buckets/sum/count,
/// observable gauges read at scrape time. Small and dependency-free on purpose.
/// </summary>
internal sealed class PrometheusMetrics : IDisposable
{
    private static readonly double[] Buckets = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(Instrument Instrument, string Labels), Series> _series = new();

    public PrometheusMetrics(IMeterFactory meterFactory)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            // Meters of this host's factory (or static ones); another host in the same process keeps its own.
            if (instrument.Meter.Name.StartsWith("Holdfast", StringComparison.Ordinal)
                && (instrument.Meter.Scope is null || ReferenceEquals(instrument.Meter.Scope, meterFactory)))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>The current values of every instrument, as Prometheus text exposition format.</summary>
    public string Render()
    {
        // Observable instruments report now; their values replace the last ones.
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var group in _series.GroupBy(s => s.Key.Instrument).OrderBy(g => g.Key.Name, StringComparer.Ordinal))
        {
            var instrument = group.Key;
            var name = Sanitize(instrument.Name) + UnitSuffix(instrument.Unit);
            var kind = instrument switch
            {
                Histogram<double> or Histogram<long> or Histogram<int> => "histogram",
                Counter<long> or Counter<double> or Counter<int> or ObservableCounter<long> or ObservableCounter<double> => "counter",
                _ => "gauge",
            };
            var metricName = kind == "counter" ? name + "_total" : name;
            if (!string.IsNullOrEmpty(instrument.Description))
            {
                text.Append("# HELP ").Append(metricName).Append(' ').Append(instrument.Description.Replace('\n', ' ')).Append('\n');
            }

            text.Append("# TYPE ").Append(metricName).Append(' ').Append(kind).Append('\n');
            foreach (var (key, series) in group.OrderBy(s => s.Key.Labels, StringComparer.Ordinal))
            {
                lock (series)
                {
                    if (kind == "histogram")
                    {
                        long cumulative = 0;
                        for (var i = 0; i < Buckets.Length; i++)
                        {
                            cumulative += series.BucketCounts[i];
                            AppendSample(text, name + "_bucket", Join(key.Labels, $"le=\"{Format(Buckets[i])}\""), cumulative);
                        }

                        AppendSample(text, name + "_bucket", Join(key.Labels, "le=\"+Inf\""), series.Count);
                        AppendSample(text, name + "_sum", key.Labels, series.Sum);
                        AppendSample(text, name + "_count", key.Labels, series.Count);
                    }
                    else
                    {
                        AppendSample(text, metricName, key.Labels, series.Sum);
                    }
                }
            }
        }

        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = FormatLabels(tags);
        var series = _series.GetOrAdd((instrument, labels), _ => new Series());
        lock (series)
        {
            switch (instrument)
            {
                case Histogram<double> or Histogram<long> or Histogram<int>:
                    series.Count++;
                    series.Sum += value;
                    for (var i = 0; i < Buckets.Length; i++)
                    {
                        if (value <= Buckets[i])
                        {
                            series.BucketCounts[i]++;
                            break;
                        }
                    }

                    break;
                case ObservableGauge<long> or ObservableGauge<double> or ObservableGauge<int> or ObservableCounter<long> or ObservableCounter<double>
                    or ObservableUpDownCounter<long> or ObservableUpDownCounter<double> or Gauge<long> or Gauge<double>:
                    series.Sum = value;
                    break;
                default:
                    series.Sum += value;
                    break;
            }
        }
    }

    private static string FormatLabels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0)
        {
            return string.Empty;
        }

        var parts = new List<string>(tags.Length);
        foreach (var tag in tags)
        {
            var value = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? string.Empty;
            parts.Add($"{Sanitize(tag.Key)}=\"{value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\"");
        }

        parts.Sort(StringComparer.Ordinal);
        return string.Join(',', parts);
    }

    private static string Join(string labels, string extra) => labels.Length == 0 ? extra : labels + "," + extra;

    private static void AppendSample(StringBuilder text, string name, string labels, double value)
    {
        text.Append(name);
        if (labels.Length > 0)
        {
            text.Append('{').Append(labels).Append('}');
        }

        text.Append(' ').Append(Format(value)).Append('\n');
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string UnitSuffix(string? unit) => unit switch
    {
        "ms" => "_milliseconds",
        "s" => "_seconds",
        "By" => "_bytes",
        _ => string.Empty,
    };

    private static string Sanitize(string name)
    {
        var builder = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_');
        }

        return builder.ToString();
    }

    private sealed class Series
    {
        public long Count { get; set; }

        public double Sum { get; set; }

        public long[] BucketCounts { get; } = new long[Buckets.Length];
    }
}
