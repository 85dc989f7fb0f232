using Holdfast.Generation;
using Holdfast.Hosting;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.Tests.Generation;

/// <summary>A real Holdfast core host (SQLite file in a temp folder, the runner as a hosted service) for generation tests.</summary>
internal sealed class GenerationTestHost : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly TempDirectory? _ownedDirectory;

    private readonly bool _started;

    private GenerationTestHost(IHost host, TempDirectory? ownedDirectory, string dataDirectory, bool started)
    {
        _started = started;
        _host = host;
        _ownedDirectory = ownedDirectory;
        DataDirectory = dataDirectory;
    }

    public static readonly Actor Alice = new("alice");

    public string DataDirectory { get; }

    public IServiceProvider Services => _host.Services;

    public GenerationSessions Sessions => Services.GetRequiredService<GenerationSessions>();

    internal GenerationRunner Runner => Services.GetRequiredService<GenerationRunner>();

    internal GenerationLogWriter Writer => Services.GetRequiredService<GenerationLogWriter>();

    /// <summary>Starts a host; settings override the defaults (scripted backend at 1000 tokens/s, 10 ms flushes).</summary>
    public static async Task<GenerationTestHost> StartAsync(
        IDictionary<string, string?>? settings = null,
        string? dataDirectory = null,
        bool startRunner = true,
        Action<IServiceCollection>? configure = null)
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
            config[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(config);
        builder.Services.AddHoldfastCore();
        configure?.Invoke(builder.Services);
        var host = builder.Build();
        await host.Services.GetRequiredService<SqliteDatabase>().MigrateAsync();
        if (startRunner)
        {
            await host.StartAsync();
            await host.Services.GetRequiredService<GenerationRunner>().Recovered;
        }

        return new GenerationTestHost(host, owned, directory, startRunner);
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
