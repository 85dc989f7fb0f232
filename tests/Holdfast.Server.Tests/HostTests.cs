using System.Net;
using Holdfast.Server.Hosting;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

public sealed class HostTests
{
    [Fact(Timeout = 60_000)]
    public async Task UnixSocket_AfterStart_IsMode0600AndWorksWithoutKey()
    {
        await using var server = await TestServer.StartAsync();

        var mode = OperatingSystem.IsWindows() ? default : File.GetUnixFileMode(server.SocketPath);
        mode.ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var socket = server.Socket();
        using var response = await socket.GetAsync("/api/v1/keys");
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact(Timeout = 60_000)]
    public async Task OpsEndpoints_WithoutKey_Respond()
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Tcp();

        (await client.GetStringAsync("/healthz")).Trim().ShouldBe("ok");
        (await client.GetStringAsync("/readyz")).Trim().ShouldBe("ready");
        var metrics = await client.GetStringAsync("/metrics");
        metrics.ShouldContain("# TYPE holdfast_sessions gauge");
        var openapi = await client.GetStringAsync("/openapi/v1.json");
        openapi.ShouldContain("\"openapi\"");
        openapi.ShouldContain("/api/v1/keys");
    }

    [Fact(Timeout = 60_000)]
    public async Task Start_SecondServerOnSameDataDirectory_IsRefused()
    {
        await using var first = await TestServer.StartAsync();

        var error = await Should.ThrowAsync<ServerStartupException>(() => TestServer.StartAsync(dataDirectory: first.DataDirectory));

        error.Message.ShouldContain("already running");
        using var client = first.Socket();
        (await client.GetAsync("/healthz")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact(Timeout = 60_000)]
    public async Task Start_StaleSocketFileLeftBehind_IsReplaced()
    {
        using var temp = new TempDirectory("hf");
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "holdfast.sock"), "stale");

        await using var server = await TestServer.StartAsync(dataDirectory: temp.Path);

        using var socket = server.Socket();
        (await socket.GetAsync("/healthz")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact(Timeout = 60_000)]
    public async Task Start_TamperedMigrationChecksum_RefusedWithClearMessage()
    {
        using var temp = new TempDirectory("hf");
        await (await TestServer.StartAsync(dataDirectory: temp.Path)).DisposeAsync();
        using (var database = new Holdfast.Storage.Sqlite.SqliteDatabase(Path.Combine(temp.Path, "holdfast.db")))
        {
            await database.WriteAsync(
                async (connection, transaction) =>
                {
                    await using var command = connection.CreateCommand();
                    command.Transaction = transaction;
                    command.CommandText = "UPDATE schema_migrations SET checksum = 'deadbeefdeadbeefdeadbeef' WHERE version = 1";
                    return await command.ExecuteNonQueryAsync();
                });
        }

        var error = await Should.ThrowAsync<Holdfast.Sessions.StoreSchemaException>(() => TestServer.StartAsync(dataDirectory: temp.Path));

        error.Message.ShouldContain("checksum");
    }
}
