using System.Diagnostics;
using System.Globalization;
using Holdfast.Storage.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>
/// Where a read of the latest state goes (SQLite, the pair's shape: 100 sessions of 100 tokens): the whole
/// <c>GetAsync</c>, and its parts measured alone on the same file: a pooled open with the per-connection pragmas, the
/// row's SELECT on an open connection, and the same SELECT with the row mapped (JSON of input and parameters, times).
/// </summary>
internal static class ReadLatencyScenario
{
    public static async Task<IEnumerable<Measurement>> ReadLatencyAsync(ScenarioScale scale)
    {
        const int Sessions = 100;
        const int Tokens = 100;
        var reads = scale.Pick(5_000, 1_000);
        var name = $"read of the latest state, {Sessions} sessions × {Tokens} tokens (where the time goes)";
        using var directory = new ScratchDirectory("read");
        await using var host = await BenchHost.StartAsync(directory.Path, new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "0",
            ["Scripted:MaxTokens"] = Tokens.ToString(CultureInfo.InvariantCulture),
            ["Scripted:MaxConcurrency"] = Sessions.ToString(CultureInfo.InvariantCulture),
        });
        var ids = await Task.WhenAll(Enumerable.Range(0, Sessions).Select(i => Task.Run(async () =>
        {
            var (session, _) = await host.Sessions.CreateAsync(BenchHost.Request(i, Tokens));
            await GenerationScenarios.FollowToEndAsync(host.Sessions, session.Id);
            return session.Id;
        })));
        await host.Writer.FlushAsync();
        var database = host.Services.GetRequiredService<SqliteDatabase>();

        var whole = await TimeAsync(reads, async i => await host.Sessions.GetAsync(ids[i * 37 % Sessions], null));
        var open = await TimeAsync(reads, async _ =>
        {
            await using var connection = await database.OpenAsync();
        });
        await using var shared = await database.OpenAsync();
        await using var select = shared.CreateCommand();
        select.CommandText = "SELECT * FROM generation_sessions WHERE id = $id AND ($owner IS NULL OR owner = $owner)";
        var id = select.Parameters.Add("$id", SqliteType.Text);
        select.Parameters.AddWithValue("$owner", DBNull.Value);
        var query = await TimeAsync(reads, async i =>
        {
            id.Value = ids[i * 37 % Sessions];
            await using var reader = await select.ExecuteReaderAsync();
            await reader.ReadAsync();
            _ = reader.GetString(0);
        });
        var prepared = await TimeAsync(reads, async i =>
        {
            await using var command = shared.CreateCommand();
            command.CommandText = "SELECT * FROM generation_sessions WHERE id = $id AND ($owner IS NULL OR owner = $owner)";
            command.Parameters.AddWithValue("$id", ids[i * 37 % Sessions]);
            command.Parameters.AddWithValue("$owner", DBNull.Value);
            await using var reader = await command.ExecuteReaderAsync();
            await reader.ReadAsync();
            _ = reader.GetString(0);
        });
        var stored = await host.Sessions.GetAsync(ids[0], null);
        var input = Holdfast.Generation.GenerationJson.Serialize(stored.Input);
        var parameters = Holdfast.Generation.GenerationJson.Serialize(stored.Parameters);
        var mapping = await TimeAsync(reads, _ =>
        {
            GC.KeepAlive(Holdfast.Generation.GenerationJson.Deserialize<List<Holdfast.Generation.GenerationMessage>>(input));
            GC.KeepAlive(Holdfast.Generation.GenerationJson.Deserialize<Holdfast.Generation.GenerationParameters>(parameters));
            return Task.CompletedTask;
        });
        return
        [
            .. Micro(name, "GetAsync, whole", whole),
            .. Micro(name, "part: open a pooled connection (per-connection pragmas) and close it", open),
            .. Micro(name, "part: the row's SELECT, prepared once, not mapped", query),
            .. Micro(name, "part: the row's SELECT with a new command (prepared per read, as the store did before it kept statements), not mapped", prepared),
            .. Micro(name, "part: the JSON of input and parameters decoded", mapping),
        ];
    }

    private static IEnumerable<Measurement> Micro(string name, string metric, List<double> milliseconds) =>
        Percentiles.Describe(name, metric, milliseconds.Select(m => m * 1000), "µs");

    private static async Task<List<double>> TimeAsync(int count, Func<int, Task> work)
    {
        for (var i = 0; i < 200; i++)
        {
            await work(i); // warm-up, not counted
        }

        var times = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await work(i);
            times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }

        return times;
    }
}
