using Holdfast.Generation;
using Holdfast.Hosting;
using Holdfast.Server.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>A Holdfast core host (the runner, group commit, SQLite with the shipped defaults) over a temp folder.</summary>
internal sealed class BenchHost : IAsyncDisposable
{
    private readonly IHost _host;
    private bool _stopped;

    private BenchHost(IHost host, string dataDirectory)
    {
        _host = host;
        DataDirectory = dataDirectory;
    }

    public string DataDirectory { get; }

    /// <summary>Settings from <c>--set KEY=VALUE</c>: they win over every scenario's own (e.g. another flush interval).</summary>
    public static Dictionary<string, string?> Overrides { get; } = new(StringComparer.Ordinal);

    public GenerationSessions Sessions => _host.Services.GetRequiredService<GenerationSessions>();

    public IServiceProvider Services => _host.Services;

    internal GenerationLogWriter Writer => _host.Services.GetRequiredService<GenerationLogWriter>();

    internal GenerationRunner Runner => _host.Services.GetRequiredService<GenerationRunner>();

    /// <summary>Starts a host over <paramref name="dataDirectory"/>; <paramref name="settings"/> override the defaults.</summary>
    public static async Task<BenchHost> StartAsync(string dataDirectory, IDictionary<string, string?> settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var config = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Storage:DataDirectory"] = dataDirectory,
            ["Generation:DefaultBackend"] = "scripted",
            ["Bots:RestoreOnStart"] = "true",
        };
        foreach (var (key, value) in settings)
        {
            config[key] = value;
        }

        foreach (var (key, value) in Overrides)
        {
            config[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(config);
        // The store the configuration names, like `holdfast serve`: SQLite in the data directory by default, PostgreSQL
        // with --set Storage:ConnectionString=postgres://… (use an empty database for each run).
        builder.Services.AddHoldfastStorage(builder.Configuration);
        builder.Services.AddHoldfastCore();
        var host = builder.Build();
        await host.StartAsync();
        await host.Services.GetRequiredService<GenerationRunner>().Recovered;
        return new BenchHost(host, dataDirectory);
    }

    /// <summary>A graceful stop: running sessions are interrupted and persisted, as on Ctrl-C.</summary>
    public async Task StopAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            await _host.StopAsync(TimeSpan.FromSeconds(60));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _host.Dispose();
    }

    public static CreateGenerationRequest Request(int i, int? maxTokens = null) => new()
    {
        Owner = "bench",
        Model = "scripted",
        Input = [new GenerationMessage("user", $"Benchmark prompt number {i} about harbours and kelp")],
        Parameters = new GenerationParameters { Seed = i, MaxTokens = maxTokens },
    };
}

/// <summary>A temp folder for one scenario, deleted afterwards.</summary>
internal sealed class ScratchDirectory : IDisposable
{
    public ScratchDirectory(string name)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"holdfast-bench-{name}-{Guid.NewGuid():N}");
        // Owner-only, like a data directory Holdfast creates (the server warns about a wider one).
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(Path);
        }
        else
        {
            Directory.CreateDirectory(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Left for the OS temp cleaner.
        }
    }
}
