using System.Diagnostics;
using Holdfast.Storage.Postgres;
using Npgsql;

namespace Holdfast.Benchmarks.Scenarios;

/// <summary>
/// The local PostgreSQL the PostgreSQL pairs run on: the one <c>HOLDFAST_TEST_POSTGRES</c> names, or else one started
/// the way the tests start theirs (<c>scripts/test-deps/postgres.sh</c>: PostgreSQL 15, a private cluster in a temp
/// folder, <c>fsync=on</c>, <c>synchronous_commit=on</c>) and stopped again at the end. Each side of each pair gets a
/// fresh database.
/// </summary>
internal sealed class PostgresPeer : IAsyncDisposable
{
    private readonly string _url;
    private readonly string? _startedDirectory;

    private PostgresPeer(string url, string? startedDirectory)
    {
        _url = url;
        _startedDirectory = startedDirectory;
    }

    /// <summary>Uses <c>HOLDFAST_TEST_POSTGRES</c>, or starts a server with scripts/test-deps/postgres.sh.</summary>
    public static async Task<PostgresPeer> StartAsync()
    {
        if (Environment.GetEnvironmentVariable("HOLDFAST_TEST_POSTGRES") is { Length: > 0 } given)
        {
            return new PostgresPeer(given, startedDirectory: null);
        }

        var script = Path.Combine(PeerScenarios.Root, "scripts", "test-deps", "postgres.sh");
        var (code, output, error) = await PeerScenarios.RunAsync(
            "bash",
            ["-c", $"source '{script}' >&2 && [[ -n \"${{HOLDFAST_TEST_POSTGRES:-}}\" ]] && printf '%s\\n%s\\n' \"$HOLDFAST_TEST_POSTGRES\" \"$HOLDFAST_TEST_POSTGRES_DIR\""],
            TimeSpan.FromMinutes(10));
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (code != 0 || lines.Length < 2)
        {
            throw new InvalidOperationException($"scripts/test-deps/postgres.sh could not start PostgreSQL ({code}): {error}");
        }

        return new PostgresPeer(lines[0], lines[1]);
    }

    /// <summary>What the server runs with, e.g. <c>synchronous_commit=on, fsync=on</c>.</summary>
    public async Task<string> SettingsAsync()
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionString.Parse(_url).ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT current_setting('server_version'), current_setting('synchronous_commit'), current_setting('fsync')";
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return $"PostgreSQL {reader.GetString(0).Split(' ')[0]}, synchronous_commit={reader.GetString(1)}, fsync={reader.GetString(2)}";
    }

    /// <summary>A new empty database; its URL (postgres://…/name).</summary>
    public async Task<string> CreateDatabaseAsync(string prefix)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 63)];
        await ExecuteAsync($"CREATE DATABASE {name}");
        return new UriBuilder(_url) { Path = "/" + name }.Uri.ToString();
    }

    public async Task DropDatabaseAsync(string url)
    {
        NpgsqlConnection.ClearAllPools();
        await ExecuteAsync($"DROP DATABASE IF EXISTS {new Uri(url).AbsolutePath.TrimStart('/')} WITH (FORCE)");
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_startedDirectory is null)
        {
            return;
        }

        var script = Path.Combine(PeerScenarios.Root, "scripts", "test-deps", "postgres.sh");
        var start = new ProcessStartInfo("bash") { UseShellExecute = false };
        foreach (var argument in new[] { "-c", $"source '{script}' >&2 && holdfast_test_deps_stop_postgres" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["HOLDFAST_TEST_POSTGRES"] = _url;
        start.Environment["HOLDFAST_TEST_POSTGRES_DIR"] = _startedDirectory;
        using var stop = Process.Start(start);
        if (stop is not null)
        {
            await stop.WaitForExitAsync();
        }
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionString.Parse(_url).ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    public override string ToString() => PostgresConnectionString.Redact(_url);
}
