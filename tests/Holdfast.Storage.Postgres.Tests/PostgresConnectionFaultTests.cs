using System.Net;
using System.Net.Sockets;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Npgsql;

namespace Holdfast.Storage.Postgres.Tests;

/// <summary>Unreachable server, wrong password, missing database: one sentence, no password, nothing written.</summary>
public sealed class PostgresConnectionFaultTests
{
    [Fact(Timeout = 60_000)]
    public async Task Unreachable_StoreUnavailableNamingTheServerWithoutPassword()
    {
        var port = ClosedPort();
        await using var database = new PostgresDatabase($"postgres://holdfast:s3cret-pw@127.0.0.1:{port}/holdfast") { MaxAttempts = 2 };

        var ex = await Should.ThrowAsync<StoreUnavailableException>(() => database.PingAsync());

        ex.Message.ShouldContain($"127.0.0.1:{port}/holdfast");
        ex.Message.ShouldNotContain("s3cret-pw");
        ex.Message.ShouldNotContain(Environment.NewLine);
    }

    [Fact(Timeout = 60_000)]
    public async Task WrongPassword_StoreConfiguration()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        var wrong = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Password = "not-the-password-123" };
        await using var database = new PostgresDatabase(wrong);

        var ex = await Should.ThrowAsync<StoreConfigurationException>(() => database.MigrateAsync());

        ex.Message.ShouldContain("wrong password");
        ex.Message.ShouldNotContain("not-the-password-123");
        (await db.ScalarAsync("SELECT to_regclass('public.schema_migrations') IS NULL")).ShouldBe(true);
    }

    [Fact(Timeout = 60_000)]
    public async Task MissingDatabase_StoreConfigurationNamingIt()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        var missing = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Database = "holdfast_no_such_db" };
        await using var database = new PostgresDatabase(missing);

        var ex = await Should.ThrowAsync<StoreConfigurationException>(() => database.PingAsync());

        ex.Message.ShouldContain("holdfast_no_such_db");
        ex.Message.ShouldContain("does not exist");
        ex.Message.ShouldNotContain(db.Password!);
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
