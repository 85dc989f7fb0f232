using Holdfast.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Holdfast.TestHelpers;

/// <summary>Builds a real generic host with Holdfast's core services over a data directory (no HTTP).</summary>
public static class TestHosts
{
    /// <summary>
    /// A host with <c>AddHoldfastSqliteStorage</c> and <c>AddHoldfastCore</c> whose data directory is <paramref name="dataDirectory"/>;
    /// <paramref name="settings"/> add or override configuration keys (e.g. <c>Bots:PublicBaseUrl</c>).
    /// </summary>
    public static IHost BuildCoreHost(string dataDirectory, IDictionary<string, string?>? settings = null, Action<IServiceCollection>? configure = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var values = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Storage:DataDirectory"] = dataDirectory,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            values[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(values);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        configure?.Invoke(builder.Services);
        builder.Services.AddHoldfastSqliteStorage();
        builder.Services.AddHoldfastCore();
        return builder.Build();
    }
}
