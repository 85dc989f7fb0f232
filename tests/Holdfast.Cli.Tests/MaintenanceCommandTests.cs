using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Cli.Tests;

/// <summary><c>holdfast migrate | backup | restore | check</c> run as real processes: exit codes and one-line reasons.</summary>
public sealed class MaintenanceCommandTests : IDisposable
{
    private readonly TempDirectory _data = new("holdfast-maint");
    private readonly TempDirectory _backups = new("holdfast-maint-backups");

    private Dictionary<string, string?> Environment => new(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = _data.Path };

    public void Dispose()
    {
        _data.Dispose();
        _backups.Dispose();
    }

    [Fact(Timeout = 180_000)]
    public async Task MaintenanceCommands_WithoutService_Exit0OnSuccessAndOneLineReasonOnFailure()
    {
        var noDatabase = await CliProcess.RunAsync(["check"], Environment);
        noDatabase.ExitCode.ShouldBe(1, noDatabase.ToString());
        OneLine(noDatabase.Stderr).ShouldContain("no database file");

        var migrate = await CliProcess.RunAsync(["migrate"], Environment);
        migrate.ExitCode.ShouldBe(0, migrate.ToString());
        migrate.Stdout.ShouldContain("0001_foundation");

        var check = await CliProcess.RunAsync(["check"], Environment);
        check.ExitCode.ShouldBe(0, check.ToString());
        check.Stdout.ShouldContain("integrity:  ok");

        var backupFile = _backups.File("one.db");
        var backup = await CliProcess.RunAsync(["backup", backupFile], Environment);
        backup.ExitCode.ShouldBe(0, backup.ToString());
        File.Exists(backupFile).ShouldBeTrue();

        var again = await CliProcess.RunAsync(["backup", backupFile], Environment);
        again.ExitCode.ShouldNotBe(0);
        OneLine(again.Stderr).ShouldContain("already exists");

        var restore = await CliProcess.RunAsync(["restore", backupFile], Environment);
        restore.ExitCode.ShouldBe(0, restore.ToString());
        Directory.GetFiles(_data.Path, "holdfast.db.*.bak").ShouldHaveSingleItem();

        var missing = await CliProcess.RunAsync(["restore", _backups.File("missing.db")], Environment);
        missing.ExitCode.ShouldNotBe(0);
        OneLine(missing.Stderr).ShouldContain("missing.db");

        await using (var connection = new SqliteConnection($"Data Source={_data.File("holdfast.db")};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var tamper = connection.CreateCommand();
            tamper.CommandText = "UPDATE schema_migrations SET checksum = 'deadbeefdeadbeefdeadbeef' WHERE version = 1";
            await tamper.ExecuteNonQueryAsync();
        }

        var tampered = await CliProcess.RunAsync(["check"], Environment);
        tampered.ExitCode.ShouldBe(1, tampered.ToString());
        OneLine(tampered.Stderr).ShouldContain("checksum");
    }

    [Fact(Timeout = 180_000)]
    public async Task Restore_WhileServeRuns_RefusedAndBackupWorks()
    {
        await using var server = await ServerProcess.StartNewAsync();
        var backupFile = _backups.File("live.db");

        var backup = await CliProcess.RunAsync(["backup", backupFile], server.Environment);
        var restore = await CliProcess.RunAsync(["restore", backupFile], server.Environment);

        backup.ExitCode.ShouldBe(0, backup.ToString());
        restore.ExitCode.ShouldNotBe(0, restore.ToString());
        OneLine(restore.Stderr).ShouldContain("--force");
        Directory.GetFiles(server.Data.Path, "*.bak").ShouldBeEmpty();

        await server.StopAsync();
        var afterStop = await CliProcess.RunAsync(["restore", backupFile], server.Environment);

        afterStop.ExitCode.ShouldBe(0, afterStop.ToString());
    }

    private static string OneLine(string stderr)
    {
        var lines = stderr.Trim().Split('\n');
        lines.Length.ShouldBe(1, stderr);
        return lines[0];
    }
}
