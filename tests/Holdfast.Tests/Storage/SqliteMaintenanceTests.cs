using System.Net.Sockets;
using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.Storage;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;

namespace Holdfast.Tests.Storage;

[Collection(ResourceHeavyCollection.Name)]
public sealed class SqliteMaintenanceTests
{
    [Fact(Timeout = 120_000)]
    public async Task BackupAsync_WhileChildWritesContinuously_CopyIsConsistentAndRestores()
    {
        using var temp = new TempDirectory();
        var databasePath = temp.File("data/holdfast.db");
        Directory.CreateDirectory(temp.File("data"));
        var backupPath = temp.File("backups/holdfast-backup.db");
        using var child = TestChildProcess.Start("bot-writes", databasePath, "live");
        await child.WaitForLinesAsync(100);
        var reportedBeforeBackup = child.Lines.Where(l => l != "ready").ToList();
        var progress = new List<CopyProgress>();

        var backup = await SqliteMaintenance.BackupAsync(databasePath, backupPath, progress: new SyncProgress<CopyProgress>(progress.Add));

        // The writer was never blocked: it goes on committing after the backup.
        var linesAtBackupEnd = child.Lines.Count;
        await child.WaitForLinesAsync(linesAtBackupEnd + 20);
        var reportedAfterBackup = (await child.KillAsync()).Count(l => l != "ready");

        backup.IsHealthy.ShouldBeTrue();
        progress.ShouldNotBeEmpty();
        progress[^1].PagesDone.ShouldBe(progress[^1].PagesTotal);
        File.Exists(backupPath + "-wal").ShouldBeFalse();
        (await SqliteMaintenance.CheckAsync(backupPath)).IsHealthy.ShouldBeTrue();
        await CrashSafetyTests.AssertAllPresentAsync(backupPath, reportedBeforeBackup);
        var backupCount = await CountBotsAsync(backupPath);
        backupCount.ShouldBeGreaterThanOrEqualTo(reportedBeforeBackup.Count(l => l.StartsWith("created", StringComparison.Ordinal)));
        (await CountBotsAsync(databasePath)).ShouldBeGreaterThan(backupCount);
        reportedAfterBackup.ShouldBeGreaterThan(reportedBeforeBackup.Count);

        // Restore over the live file (writer gone): the database is the backup again; the replaced one is kept.
        var restored = await SqliteMaintenance.RestoreAsync(backupPath, databasePath);

        restored.PreviousCopy.ShouldNotBeNull();
        File.Exists(restored.PreviousCopy).ShouldBeTrue();
        (await CountBotsAsync(restored.PreviousCopy)).ShouldBeGreaterThan(backupCount);
        (await CountBotsAsync(databasePath)).ShouldBe(backupCount);
        (await SqliteMaintenance.CheckAsync(databasePath)).IsHealthy.ShouldBeTrue();
        await CrashSafetyTests.AssertAllPresentAsync(databasePath, reportedBeforeBackup);
    }

    [Fact(Timeout = 60_000)]
    public async Task BackupAsync_DestinationExists_RefusedWithoutOverwrite()
    {
        using var temp = new TempDirectory();
        var databasePath = await CreateDatabaseWithBotsAsync(temp.File("holdfast.db"), 3);
        await File.WriteAllTextAsync(temp.File("exists.db"), "keep me");

        var ex = await Should.ThrowAsync<InvalidSessionInputException>(() => SqliteMaintenance.BackupAsync(databasePath, temp.File("exists.db")));

        ex.Message.ShouldContain("already exists");
        (await File.ReadAllTextAsync(temp.File("exists.db"))).ShouldBe("keep me");
    }

    [Fact(Timeout = 60_000)]
    public async Task RestoreAsync_DataDirectoryLockedByAnotherProcess_RefusedUnlessForced()
    {
        using var temp = new TempDirectory();
        var dataDirectory = temp.File("data");
        var databasePath = await CreateDatabaseWithBotsAsync(Path.Combine(dataDirectory, "holdfast.db"), 2);
        var backupPath = await CreateDatabaseWithBotsAsync(temp.File("other.db"), 5);
        using var server = TestChildProcess.Start("hold-lock", dataDirectory);
        await server.WaitForLinesAsync(1);

        var ex = await Should.ThrowAsync<DataDirectoryInUseException>(() => SqliteMaintenance.RestoreAsync(backupPath, databasePath));

        ex.Message.ShouldContain("test-child serve");
        ex.Message.ShouldContain("--force");
        (await CountBotsAsync(databasePath)).ShouldBe(2);
        Directory.GetFiles(dataDirectory, "*.bak").ShouldBeEmpty();

        var forced = await SqliteMaintenance.RestoreAsync(backupPath, databasePath, force: true);

        forced.PreviousCopy.ShouldNotBeNull();
        (await CountBotsAsync(databasePath)).ShouldBe(5);
        (await CountBotsAsync(forced.PreviousCopy)).ShouldBe(2);
        await server.KillAsync();
        (await DataDirectoryLock.ProbeAsync(dataDirectory)).ShouldBeNull();
    }

    [Fact(Timeout = 60_000)]
    public async Task RestoreAsync_ServiceSocketAcceptsConnections_Refused()
    {
        using var temp = new TempDirectory("hf");
        var databasePath = await CreateDatabaseWithBotsAsync(temp.File("holdfast.db"), 1);
        var backupPath = await CreateDatabaseWithBotsAsync(temp.File("other.db"), 4);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(temp.File(DataDirectoryLock.SocketFileName)));
        listener.Listen();

        var ex = await Should.ThrowAsync<DataDirectoryInUseException>(() => SqliteMaintenance.RestoreAsync(backupPath, databasePath));

        ex.Message.ShouldContain("listening");
        (await CountBotsAsync(databasePath)).ShouldBe(1);
    }

    [Fact(Timeout = 60_000)]
    public async Task RestoreAsync_CorruptOrForeignBackup_RefusedAndNothingChanged()
    {
        using var temp = new TempDirectory();
        var databasePath = await CreateDatabaseWithBotsAsync(temp.File("holdfast.db"), 2);
        var garbage = temp.File("garbage.db");
        await File.WriteAllBytesAsync(garbage, Enumerable.Range(0, 8192).Select(i => (byte)(i * 7)).ToArray());
        var foreign = temp.File("foreign.db");
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={foreign};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE t (x INTEGER)";
            await command.ExecuteNonQueryAsync();
        }

        await Should.ThrowAsync<StoreSchemaException>(() => SqliteMaintenance.RestoreAsync(garbage, databasePath));
        var ex = await Should.ThrowAsync<StoreSchemaException>(() => SqliteMaintenance.RestoreAsync(foreign, databasePath));
        await Should.ThrowAsync<InvalidSessionInputException>(() => SqliteMaintenance.RestoreAsync(temp.File("missing.db"), databasePath));

        ex.Message.ShouldContain("not a Holdfast database");
        (await CountBotsAsync(databasePath)).ShouldBe(2);
        Directory.GetFiles(temp.Path, "*.bak").ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task CheckAsync_HealthyDatabase_ReportsOkAndCurrentWithoutWriting()
    {
        using var temp = new TempDirectory();
        var databasePath = await CreateDatabaseWithBotsAsync(temp.File("holdfast.db"), 2);
        var before = File.GetLastWriteTimeUtc(databasePath);

        var check = await SqliteMaintenance.CheckAsync(databasePath);

        check.IsHealthy.ShouldBeTrue();
        check.IntegrityErrors.ShouldBeEmpty();
        check.Migrations.IsCurrent.ShouldBeTrue();
        File.GetLastWriteTimeUtc(databasePath).ShouldBe(before);
    }

    [Fact(Timeout = 60_000)]
    public async Task CheckAsync_CorruptedPage_ReportsIntegrityErrors()
    {
        using var temp = new TempDirectory();
        var databasePath = await CreateDatabaseWithBotsAsync(temp.File("holdfast.db"), 200);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={databasePath};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var checkpoint = connection.CreateCommand();
            checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;";
            await checkpoint.ExecuteNonQueryAsync();
        }

        var bytes = await File.ReadAllBytesAsync(databasePath);
        var pageSize = 4096;
        for (var i = pageSize * 3; i < pageSize * 4 && i < bytes.Length; i++)
        {
            bytes[i] = 0x5A;
        }

        await File.WriteAllBytesAsync(databasePath, bytes);

        var check = await SqliteMaintenance.CheckAsync(databasePath);

        check.IsHealthy.ShouldBeFalse();
        check.IntegrityErrors.ShouldNotBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task RestoreAsync_FreshDataDirectory_CreatesTheDatabaseWithoutBak()
    {
        using var temp = new TempDirectory();
        var backupPath = await CreateDatabaseWithBotsAsync(temp.File("backup.db"), 3);
        var target = temp.File("new-machine/holdfast.db");
        Directory.CreateDirectory(temp.File("new-machine"));

        var result = await SqliteMaintenance.RestoreAsync(backupPath, target);

        result.PreviousCopy.ShouldBeNull();
        (await CountBotsAsync(target)).ShouldBe(3);
        using var database = new SqliteDatabase(target);
        (await database.GetMigrationStatusAsync()).IsCurrent.ShouldBeTrue();
    }

    [Fact]
    public void FromOptions_MissingDataDirectory_CreatedOwnerOnly()
    {
        using var temp = new TempDirectory();
        var dataDirectory = temp.File("first-run/data");

        using var database = SqliteDatabase.FromOptions(new StorageOptions { DataDirectory = dataDirectory });

        Directory.Exists(dataDirectory).ShouldBeTrue();
        database.Path.ShouldBe(Path.Combine(dataDirectory, "holdfast.db"));
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(dataDirectory).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    [Fact]
    public void DataDirectoryLock_SecondAcquireWhileHeld_ThrowsNamingHolder()
    {
        using var temp = new TempDirectory();
        using var held = DataDirectoryLock.Acquire(temp.Path, "serve");

        var ex = Should.Throw<DataDirectoryInUseException>(() => DataDirectoryLock.Acquire(temp.Path, "restore"));

        ex.Message.ShouldContain("serve (pid");
    }

    internal static async Task<string> CreateDatabaseWithBotsAsync(string path, int count)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var database = new SqliteDatabase(path);
        await database.MigrateAsync();
        var store = new SqliteBotStore(database, TimeProvider.System);
        for (var i = 0; i < count; i++)
        {
            await store.StartOrReactivateAsync(new StartBotSession($"bot{i}"), new Actor("test"));
        }

        return path;
    }

    internal static async Task<int> CountBotsAsync(string path)
    {
        using var database = new SqliteDatabase(path);
        return await database.ReadAsync(async connection =>
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT count(*) FROM bot_sessions";
            return Convert.ToInt32(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        });
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
