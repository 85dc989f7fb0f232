using System.Net;
using System.Net.Sockets;
using Holdfast.Server.Hosting;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

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

    [Fact(Timeout = 30_000)]
    public async Task UnixSocketBinding_BoundSocket_IsOwnerOnlyBeforeItListens()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var temp = new TempDirectory("hf");
        var path = temp.File("probe.sock");

        using var listener = UnixSocketBinding.CreateBoundListenSocket(new UnixDomainSocketEndPoint(path));

        File.GetUnixFileMode(path).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite, "the mode is owner-only before anyone can connect");
        using (var early = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            (await Should.ThrowAsync<SocketException>(async () => await early.ConnectAsync(new UnixDomainSocketEndPoint(path))))
                .SocketErrorCode.ShouldBe(SocketError.ConnectionRefused, "a bound socket that does not listen yet refuses connections");
        }

        listener.Listen();
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
        client.Connected.ShouldBeTrue();
    }

    [Fact(Timeout = 60_000)]
    public async Task Start_DataDirectoryMissing_IsCreatedOwnerOnlyWithOwnerOnlySocket()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var temp = new TempDirectory("hf");
        var data = Path.Combine(temp.Path, "fresh", "holdfast");

        await using var server = await TestServer.StartAsync(dataDirectory: data);

        File.GetUnixFileMode(data).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.GetUnixFileMode(server.SocketPath).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    [Fact(Timeout = 60_000)]
    public async Task Readyz_SchemaChangedUnderneath_Is503ProblemUntilRepaired()
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Tcp();
        (await client.GetAsync("/readyz")).StatusCode.ShouldBe(HttpStatusCode.OK);
        var connectionString = new SqliteConnectionStringBuilder { DataSource = server.DatabasePath, Pooling = false, DefaultTimeout = 10 }.ToString();
        async Task ExecuteAsync(string sql)
        {
            await using var connection = new SqliteConnection(connectionString);
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            await command.ExecuteNonQueryAsync();
        }

        // A newer Holdfast migrated the file underneath this server: the schema is not one this code knows.
        await ExecuteAsync("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (9999, 'from_the_future', 'abc', '2030-01-01T00:00:00.0000000+00:00')");
        using (var newer = await client.GetAsync("/readyz"))
        {
            (await newer.ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable)).Detail!.ShouldContain("newer than the code");
        }

        (await client.GetAsync("/healthz")).StatusCode.ShouldBe(HttpStatusCode.OK, "alive, just not ready");
        await ExecuteAsync("DELETE FROM schema_migrations WHERE version = 9999");
        (await client.GetAsync("/readyz")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // The record of an applied migration is gone (say, an older file copied in): a migration is pending.
        await ExecuteAsync("CREATE TABLE saved_migration AS SELECT * FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)");
        await ExecuteAsync("DELETE FROM schema_migrations WHERE version = (SELECT version FROM saved_migration)");
        using (var pending = await client.GetAsync("/readyz"))
        {
            (await pending.ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable)).Detail!.ShouldContain("pending");
        }

        await ExecuteAsync("INSERT INTO schema_migrations SELECT * FROM saved_migration");
        (await client.GetAsync("/readyz")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }
}
