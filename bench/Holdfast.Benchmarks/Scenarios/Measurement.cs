using System.Globalization;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>One number a scenario measured, with its unit and how it was taken.</summary>
internal sealed record Measurement(string Scenario, string Metric, double Value, string Unit)
{
    public string FormattedValue => Value switch
    {
        >= 100 => Value.ToString("#,0", CultureInfo.InvariantCulture),
        >= 10 => Value.ToString("0.0", CultureInfo.InvariantCulture),
        _ => Value.ToString("0.00", CultureInfo.InvariantCulture),
    };
}

/// <summary>Percentiles of a sample (nearest rank).</summary>
internal static class Percentiles
{
    public static double Of(IReadOnlyList<double> sorted, double percentile)
    {
        if (sorted.Count == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(percentile / 100 * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    public static IEnumerable<Measurement> Describe(string scenario, string metric, IEnumerable<double> values, string unit)
    {
        var sorted = values.Order().ToList();
        yield return new Measurement(scenario, $"{metric} p50", Of(sorted, 50), unit);
        yield return new Measurement(scenario, $"{metric} p99", Of(sorted, 99), unit);
    }
}
