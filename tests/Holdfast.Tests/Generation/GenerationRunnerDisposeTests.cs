using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Tests.Generation;

/// <summary>A runner whose host is disposed without a stop leaves nothing running behind it.</summary>
public sealed class GenerationRunnerDisposeTests
{
    [Fact(Timeout = 60_000)]
    public async Task HostDisposedWithoutStop_LeaseRenewalStops()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Cluster:LeaseDuration"] = "00:00:01",
            ["Cluster:RenewInterval"] = "00:00:00.100",
        });
        var path = host.Services.GetRequiredService<SqliteDatabase>().Path;
        var first = await HeartbeatAsync(path);
        await Poll.UntilAsync(async () => await HeartbeatAsync(path) != first, "the renewal loop to write a heartbeat");

        host.DisposeWithoutStopping();
        await Task.Delay(300); // a renewal already under way may still land
        var afterDispose = await HeartbeatAsync(path);
        await Task.Delay(1_000); // ten renewal intervals

        (await HeartbeatAsync(path)).ShouldBe(afterDispose, "no renewal ticks on after the host is gone (it wrote every 100 ms before)");
    }

    private static async Task<string?> HeartbeatAsync(string path)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT max(heartbeat_at) FROM cluster_nodes";
        return await command.ExecuteScalarAsync() as string;
    }
}
