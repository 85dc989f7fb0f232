using System.Globalization;
using Npgsql;

namespace Holdfast.TestHelpers;

/// <summary>
/// The PostgreSQL server of the tests: <c>HOLDFAST_TEST_POSTGRES</c>, a connection string of a role that may create
/// databases, set by <c>scripts/test-deps/postgres.sh</c> (which starts a private PostgreSQL 15) or by hand for an
/// existing server. A test that needs PostgreSQL fails, never skips, when the variable is missing or the server does
/// not answer: run the PostgreSQL tests alone with
/// <c>bash scripts/test-deps/postgres.sh dotnet test tests/Holdfast.Storage.Postgres.Tests -c Release</c>.
/// </summary>
public static class TestPostgres
{
    /// <summary>The environment variable that names the server.</summary>
    public const string Variable = "HOLDFAST_TEST_POSTGRES";

    /// <summary>How to run the PostgreSQL tests, for failure messages.</summary>
    public const string HowToRun =
        "Run the tests through `bash scripts/test.sh`, or wrap the command: `bash scripts/test-deps/postgres.sh dotnet test tests/Holdfast.Storage.Postgres.Tests -c Release` " +
        "(it starts a private PostgreSQL 15), or set " + Variable + " to postgres://user:password@127.0.0.1:5432/postgres of a server where that role may create databases.";

    /// <summary>The administrative connection string (the server's own database), or a failing test when it is not set.</summary>
    public static string AdminConnectionString
    {
        get
        {
            var value = Environment.GetEnvironmentVariable(Variable);
            if (string.IsNullOrWhiteSpace(value))
            {
                throw new InvalidOperationException($"{Variable} is not set, so there is no PostgreSQL server for this test. {HowToRun}");
            }

            return value;
        }
    }

    /// <summary>Creates a new empty database (unique name) and returns it; drop it with <see cref="TestDatabase.DisposeAsync"/>.</summary>
    public static async Task<TestDatabase> CreateDatabaseAsync(string prefix = "holdfast_test", CancellationToken cancellationToken = default)
    {
        var admin = AdminConnectionString;
        var name = string.Create(CultureInfo.InvariantCulture, $"{prefix}_{Guid.NewGuid():N}")[..Math.Min(63, prefix.Length + 33)].ToLowerInvariant();
        await using (var connection = await OpenAdminAsync(admin, cancellationToken))
        await using (var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        return new TestDatabase(admin, name);
    }

    internal static async Task<NpgsqlConnection> OpenAdminAsync(string admin, CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(ToKeywords(admin));
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            await connection.DisposeAsync();
            throw new InvalidOperationException($"The PostgreSQL server of {Variable} does not answer ({ex.Message}). {HowToRun}", ex);
        }
    }

    /// <summary>A postgres:// URI as Npgsql keywords (the tests' own parser, independent of the product's).</summary>
    internal static string ToKeywords(string uriOrKeywords)
    {
        if (!uriOrKeywords.StartsWith("postgres", StringComparison.OrdinalIgnoreCase) || !uriOrKeywords.Contains("://", StringComparison.Ordinal))
        {
            return uriOrKeywords;
        }

        var uri = new Uri(uriOrKeywords);
        var user = uri.UserInfo.Split(':', 2);
        return new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.Port > 0 ? uri.Port : 5432,
            Username = Uri.UnescapeDataString(user[0]),
            Password = user.Length > 1 ? Uri.UnescapeDataString(user[1]) : null,
            Database = uri.AbsolutePath.Trim('/') is { Length: > 0 } db ? db : "postgres",
            Pooling = false,

            // A loaded 2-core machine can take longer than Npgsql's default 15 s to finish a connect (and SCRAM).
            Timeout = 60,
        }.ConnectionString;
    }
}

/// <summary>A database created for one test class; dropped (with any connection still open to it) on dispose.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private readonly string _admin;

    internal TestDatabase(string admin, string name)
    {
        _admin = admin;
        Name = name;
        var builder = new NpgsqlConnectionStringBuilder(TestPostgres.ToKeywords(admin)) { Database = name, Pooling = true };
        ConnectionString = builder.ConnectionString;
        var uri = new Uri(admin.Contains("://", StringComparison.Ordinal) ? admin : "postgres://x@localhost/");
        Uri = admin.Contains("://", StringComparison.Ordinal)
            ? new UriBuilder(uri) { Path = "/" + name }.Uri.ToString()
            : ConnectionString;
    }

    /// <summary>The database name.</summary>
    public string Name { get; }

    /// <summary>Npgsql keyword form.</summary>
    public string ConnectionString { get; }

    /// <summary>postgres://user:password@host:port/name (what a user passes to <c>--store</c>).</summary>
    public string Uri { get; }

    /// <summary>The password of the test server (for tests that check it never shows).</summary>
    public string? Password => new NpgsqlConnectionStringBuilder(ConnectionString).Password;

    /// <summary>Runs <paramref name="sql"/> on this database (test set-up and inspection).</summary>
    public async Task<object?> ScalarAsync(string sql, CancellationToken cancellationToken = default)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await using var connection = await TestPostgres.OpenAdminAsync(_admin, CancellationToken.None);
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync(CancellationToken.None);
    }
}
