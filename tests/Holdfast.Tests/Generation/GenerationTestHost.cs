using Holdfast.Generation;
using Holdfast.Hosting;
using Holdfast.Sessions;
using Holdfast.Storage;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Holdfast.Tests.Generation;

/// <summary>A real Holdfast core host (SQLite file in a temp folder, the runner as a hosted service) for generation tests.</summary>
internal sealed class GenerationTestHost : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly TempDirectory? _ownedDirectory;
    private bool _started;

    private GenerationTestHost(IHost host, TempDirectory? ownedDirectory, string dataDirectory, CapturedLogs logs)
    {
        _host = host;
        _ownedDirectory = ownedDirectory;
        DataDirectory = dataDirectory;
        Logs = logs;
    }

    public static readonly Actor Alice = new("alice");

    public string DataDirectory { get; }

    /// <summary>Everything the host logged (Information and above).</summary>
    public CapturedLogs Logs { get; }

    public IServiceProvider Services => _host.Services;

    public GenerationSessions Sessions => Services.GetRequiredService<GenerationSessions>();

    internal GenerationRunner Runner => Services.GetRequiredService<GenerationRunner>();

    internal GenerationLogWriter Writer => Services.GetRequiredService<GenerationLogWriter>();

    /// <summary>
    /// Builds a host and migrates its database; with <paramref name="startRunner"/> (default) also starts it (the
    /// runner and its recovery sweep), else call <see cref="StartRunnerAsync"/> later. Settings override the defaults
    /// (scripted backend at 1000 tokens/s, 60 tokens, 10 ms flushes); a null value removes a default.
    /// <paramref name="configuration"/> can add configuration sources after the settings.
    /// </summary>
    public static async Task<GenerationTestHost> StartAsync(
        IDictionary<string, string?>? settings = null,
        string? dataDirectory = null,
        bool startRunner = true,
        Action<IServiceCollection>? configure = null,
        Action<IConfigurationBuilder>? configuration = null)
    {
        var owned = dataDirectory is null ? new TempDirectory("holdfast-gen") : null;
        var directory = dataDirectory ?? owned!.Path;
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var config = new Dictionary<string, string?>
        {
            ["Storage:DataDirectory"] = directory,
            ["Storage:SqliteSynchronous"] = "NORMAL",
            ["Generation:FlushInterval"] = "00:00:00.010",
            ["Generation:PollInterval"] = "00:00:00.200",
            ["Generation:DefaultBackend"] = "scripted",
            ["Scripted:TokensPerSecond"] = "1000",
            ["Scripted:MaxTokens"] = "60",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                config.Remove(key);
            }
            else
            {
                config[key] = value;
            }
        }

        builder.Configuration.AddInMemoryCollection(config);
        configuration?.Invoke(builder.Configuration);
        var logs = new CapturedLogs();
        builder.Logging.AddProvider(logs);
        builder.Services.AddHoldfastSqliteStorage();
        builder.Services.AddHoldfastCore();
        configure?.Invoke(builder.Services);
        var host = builder.Build();
        await host.Services.GetRequiredService<StoreSchema>().EnsureAsync();
        var testHost = new GenerationTestHost(host, owned, directory, logs);
        if (startRunner)
        {
            try
            {
                await testHost.StartRunnerAsync();
            }
            catch
            {
                testHost._started = false; // a host whose start failed cannot be stopped, only disposed
                await testHost.DisposeAsync();
                throw;
            }
        }

        return testHost;
    }

    /// <summary>Starts the host (the runner, after its recovery sweep) when it was built with <c>startRunner: false</c>.</summary>
    public async Task StartRunnerAsync()
    {
        _started = true;
        await _host.StartAsync();
        await Runner.Recovered;
    }

    public static CreateGenerationRequest ScriptedRequest(string prompt = "Tell me about harbours", long seed = 7, int? maxTokens = null, string owner = "alice") => new()
    {
        Owner = owner,
        Model = "scripted",
        Input = [new GenerationMessage("user", prompt)],
        Parameters = new GenerationParameters { Seed = seed, MaxTokens = maxTokens },
    };

    /// <summary>The text an uninterrupted scripted run of <paramref name="request"/> produces.</summary>
    public static string ExpectedText(CreateGenerationRequest request, int configuredMax = 60) => string.Concat(ExpectedChunks(request, configuredMax));

    /// <summary>The chunks an uninterrupted scripted run of <paramref name="request"/> produces.</summary>
    public static IReadOnlyList<string> ExpectedChunks(CreateGenerationRequest request, int configuredMax = 60)
    {
        var conversation = request.Input.Select(m => new Microsoft.Extensions.AI.ChatMessage(new Microsoft.Extensions.AI.ChatRole(m.Role), m.Content)).ToList();
        return Holdfast.Generation.Backends.ScriptedChatClient.Plan(conversation, string.Empty, request.Parameters?.Seed, request.Parameters?.MaxTokens, configuredMax, request.Parameters?.Stop).Chunks;
    }

    public async Task<GenerationSession> WaitForStatusAsync(string id, GenerationStatus status, TimeSpan? timeout = null)
    {
        GenerationSession? last = null;
        try
        {
            return await Poll.UntilAsync(async () => last = await Sessions.GetAsync(id, null), s => s.Status == status, $"session {id} to be {status}", timeout);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message}; it is {last?.Status} (desired {last?.DesiredState}, attempts {last?.Attempts}, error: {last?.Error})", ex);
        }
    }

    /// <summary>Disposes the host without stopping it first, as an embedder that forgets to stop it would.</summary>
    public void DisposeWithoutStopping()
    {
        _started = false;
        _host.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_started)
            {
                await _host.StopAsync(TimeSpan.FromSeconds(10));
            }
        }
        finally
        {
            _host.Dispose();
            _ownedDirectory?.Dispose();
        }
    }
}
