using System.Globalization;
using Holdfast.Generation;
using Holdfast.Hosting;
using Holdfast.Storage.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.TestChild;

/// <summary>
/// Runs generation sessions in a real Holdfast core host on <c>dataDirectory</c> with the scripted backend: starts
/// (or, on a later run, finds through their idempotency keys) <c>count</c> sessions <c>crash-0…</c>, prints
/// <c>ready .</c>, then <c>progress {persisted output tokens} .</c> every 20 ms until every session is completed,
/// then <c>done .</c>. A session left running by a killed predecessor is restored by the runner's recovery sweep.
/// </summary>
internal static class GenerateSessions
{
    public static async Task<int> RunAsync(string dataDirectory, int count, string tokensPerSecond, string maxTokens)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Storage:DataDirectory"] = dataDirectory,
            ["Generation:DefaultBackend"] = "scripted",
            ["Generation:FlushInterval"] = "00:00:00.010",
            ["Scripted:TokensPerSecond"] = tokensPerSecond,
            ["Scripted:MaxTokens"] = maxTokens,
        });
        builder.Services.AddHoldfastSqliteStorage();
        builder.Services.AddHoldfastCore();
        using var host = builder.Build();

        // Sessions are created (or found) before the runner starts, so nothing generates before the first progress line.
        await host.Services.GetRequiredService<SqliteDatabase>().MigrateAsync();
        var sessions = host.Services.GetRequiredService<GenerationSessions>();
        for (var i = 0; i < count; i++)
        {
            await sessions.CreateAsync(Request(i));
        }

        await Console.Out.WriteLineAsync("ready .");
        await Console.Out.FlushAsync();
        await host.StartAsync();
        while (true)
        {
            var page = await sessions.ListAsync(new GenerationListQuery { Owner = "crash", Limit = 500 });
            var tokens = page.Items.Sum(s => s.Usage.OutputTokens);
            await Console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"progress {tokens} ."));
            await Console.Out.FlushAsync();
            if (page.Items.Count == count && page.Items.All(s => s.Status == GenerationStatus.Completed))
            {
                await Console.Out.WriteLineAsync("done .");
                await Console.Out.FlushAsync();
                await host.StopAsync();
                return 0;
            }

            await Task.Delay(20);
        }
    }

    /// <summary>The request for session <paramref name="index"/> (the crash test computes the expected text from it).</summary>
    public static CreateGenerationRequest Request(int index) => new()
    {
        Owner = "crash",
        Model = "scripted",
        Input = [new GenerationMessage("user", string.Create(CultureInfo.InvariantCulture, $"Crash test session {index}: tell a long story"))],
        Parameters = new GenerationParameters { Seed = 1000 + index },
        IdempotencyKey = string.Create(CultureInfo.InvariantCulture, $"crash-{index}"),
    };
}
