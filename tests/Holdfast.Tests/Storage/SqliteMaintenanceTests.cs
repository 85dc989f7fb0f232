using System.Net.Sockets;
using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.Storage;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Xunit.Abstractions;

namespace Holdfast.Tests.Storage;

[Collection(ResourceHeavyCollection.Name)]
public sealed class SqliteMaintenanceTests
{
    private readonly ITestOutputHelper _output;

    public SqliteMaintenanceTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact(Timeout = 180_000)]
    public async Task BackupAsync_WhileChildWritesContinuously_CopyIsConsistentAndRestores()
    {
        // Arrange: several MB, so the copy takes many steps; the child commits through all of them.
        using var temp = new TempDirectory();
        var databasePath = temp.File("data/holdfast.db");
        var backupPath = temp.File("backups/holdfast-backup.db");
        await SeedLargeMessagesAsync(databasePath, sessions: 100, messageBytes: 60 * 1024);
        using var child = TestChildProcess.Start("bot-writes", databasePath, "live");
        await child.WaitForLinesAsync(50);
        var reportedBeforeBackup = child.Lines.Where(l => l != "ready").ToList();
        var steps = new List<(CopyProgress Progress, int ChildLines)>();
        var pacing = new CopyPacing(PagesPerStep: 64, PauseBetweenSteps: TimeSpan.FromMilliseconds(20));

        // Act
        var backup = await SqliteMaintenance.BackupAsync(
            databasePath,
            backupPath,
            overwrite: false,
            new SyncProgress<CopyProgress>(p => steps.Add((p, child.Lines.Count))),
            CopyPhase.Backup,
            pacing,
            CancellationToken.None);
        var linesAtBackupEnd = child.Lines.Count;
        await child.WaitForLinesAsync(linesAtBackupEnd + 20);
        var reportedAfterBackup = (await child.KillAsync()).Count(l => l != "ready");

        // Assert: many steps, and the writer committed between the first and the last of them (never blocked).
        var copiedBytes = steps[^1].Progress.PagesTotal * 4096L;
        _output.WriteLine(
            $"{copiedBytes / (1024.0 * 1024):0.0} MB copied in {steps.Count} steps; " +
            $"child lines {steps[0].ChildLines} at the first step, {steps[^1].ChildLines} at the last");
        copiedBytes.ShouldBeGreaterThan(5L * 1024 * 1024);
        steps.Count.ShouldBeGreaterThan(10);
        steps.Select(s => s.Progress.PagesDone).ShouldBeInOrder(SortDirection.Ascending);
        steps[^1].Progress.IsDone.ShouldBeTrue();
        steps.Take(steps.Count - 1).ShouldAllBe(s => !s.Progress.IsDone);
        steps[^1].ChildLines.ShouldBeGreaterThan(steps[0].ChildLines, "the child committed no write while the copy ran");
        backup.IsHealthy.ShouldBeTrue();
        File.Exists(backupPath + "-wal").ShouldBeFalse();
        (await SqliteMaintenance.CheckAsync(backupPath)).IsHealthy.ShouldBeTrue();
        await CrashSafetyTests.AssertAllPresentAsync(backupPath, reportedBeforeBackup, "backup");
        var backupCount = await CountBotsAsync(backupPath);
        backupCount.ShouldBeGreaterThanOrEqualTo(100 + reportedBeforeBackup.Count(l => l.StartsWith("created", StringComparison.Ordinal)));
        (await CountBotsAsync(databasePath)).ShouldBeGreaterThan(backupCount);
        reportedAfterBackup.ShouldBeGreaterThan(reportedBeforeBackup.Count);

        // Restore over the live file (writer gone): the database is the backup again; the replaced one is kept.
        var restored = await SqliteMaintenance.RestoreAsync(backupPath, databasePath);

        restored.PreviousCopy.ShouldNotBeNull();
        File.Exists(restored.PreviousCopy).ShouldBeTrue();
        (await CountBotsAsync(restored.PreviousCopy)).ShouldBeGreaterThan(backupCount);
        (await CountBotsAsync(databasePath)).ShouldBe(backupCount);
        (await SqliteMaintenance.CheckAsync(databasePath)).IsHealthy.ShouldBeTrue();
        await CrashSafetyTests.AssertAllPresentAsync(databasePath, reportedBeforeBackup, "restored");

        // The restored file is a working database: current schema, and it takes new writes.
        using var database = new SqliteDatabase(databasePath);
        (await database.MigrateAsync()).ShouldBeEmpty();
        var store = new SqliteBotStore(database, TimeProvider.System);
        await store.StartOrReactivateAsync(new StartBotSession("after-restore", "bridge"), new Actor("test"));
        await store.RecordMessageAsync("after-restore", "still writable", new Actor("test"));
        (await store.FindAsync("after-restore"))!.LastMessage.ShouldBe("still writable");
        (await store.FindAsync("seed-99"))!.LastMessage!.Length.ShouldBe(60 * 1024);
    }

    [Fact(Timeout = 60_000)]
    public async Task RestoreAsync_OverAnExistingDatabase_ReportsTheBakCopyThenTheRestore()
    {
        using var temp = new TempDirectory();
        var databasePath = temp.File("data/holdfast.db");
        await SeedLargeMessagesAsync(databasePath, sessions: 40, messageBytes: 60 * 1024);
        var backupPath = await CreateDatabaseWithBotsAsync(temp.File("small.db"), 3);
        var reports = new List<CopyProgress>();
        var at = new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero);

        var result = await SqliteMaintenance.RestoreAsync(backupPath, databasePath, progress: new SyncProgress<CopyProgress>(reports.Add), time: new FixedTime(at));

        result.PreviousCopy.ShouldBe(databasePath + ".20300102T030405Z.bak");
        var keep = reports.Where(r => r.Phase == CopyPhase.KeepPrevious).ToList();
        var restore = reports.Where(r => r.Phase == CopyPhase.Restore).ToList();
        keep.Count.ShouldBeGreaterThan(1);
        keep[^1].IsDone.ShouldBeTrue();
        restore.ShouldNotBeEmpty();
        restore[^1].IsDone.ShouldBeTrue();
        reports.FindLastIndex(r => r.Phase == CopyPhase.KeepPrevious).ShouldBeLessThan(reports.FindIndex(r => r.Phase == CopyPhase.Restore));
        reports.ShouldNotContain(r => r.Phase == CopyPhase.Backup);
        (await CountBotsAsync(result.PreviousCopy!)).ShouldBe(40);
        (await CountBotsAsync(databasePath)).ShouldBe(3);
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

        ex.Message.ShouldStartWith($"Refusing to restore: the data directory '{dataDirectory}' is locked by test-child serve (pid ");
        ex.Message.ShouldNotContain("in use by the data directory");
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
    public async Task RestoreAsync_DatabaseHeldByAServer_RefusedEvenWhenForcedSayingHowToStopIt()
    {
        using var temp = new TempDirectory();
        var dataDirectory = temp.File("data");
        var databasePath = await CreateDatabaseWithBotsAsync(Path.Combine(dataDirectory, "holdfast.db"), 2);
        var backupPath = await CreateDatabaseWithBotsAsync(temp.File("other.db"), 5);
        using var server = TestChildProcess.Start("hold-lock", dataDirectory, databasePath);
        await server.WaitForLinesAsync(1);

        var ex = await Should.ThrowAsync<DatabaseInUseException>(() => SqliteMaintenance.RestoreAsync(backupPath, databasePath, force: true));

        ex.Message.ShouldStartWith($"Refusing to restore: the database '{databasePath}' is in use by test-child serve (pid ");
        ex.Message.ShouldContain("even with --force");
        ex.Message.ShouldMatch(@"kill -TERM \d+");
        (await CountBotsAsync(databasePath)).ShouldBe(2);
        Directory.GetFiles(dataDirectory, "*.bak").ShouldBeEmpty();
        await server.KillAsync();

        var afterStop = await SqliteMaintenance.RestoreAsync(backupPath, databasePath);

        (await CountBotsAsync(databasePath)).ShouldBe(5);
        afterStop.PreviousCopy.ShouldNotBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task AcquireDatabase_SameFileFromTwoDataDirectories_SecondThrowsNamingTheHolder()
    {
        await Task.Yield();
        using var temp = new TempDirectory();
        var databasePath = temp.File("shared/holdfast.db");
        using var first = DataDirectoryLock.Acquire(temp.File("a"), "serve");
        using var firstDatabase = DataDirectoryLock.AcquireDatabase(databasePath, "serve", new FixedTime(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero)));
        using var second = DataDirectoryLock.Acquire(temp.File("b"), "serve");

        var ex = Should.Throw<DatabaseInUseException>(() => DataDirectoryLock.AcquireDatabase(databasePath, "serve"));

        ex.DatabasePath.ShouldBe(databasePath);
        ex.Owner.ShouldBe($"serve (pid {Environment.ProcessId}, since 2030-01-02T03:04:05Z)");
    }

    [Fact(Timeout = 60_000)]
    public async Task BackupAsync_CopiesAbandonedByKilledBackups_RemovedAndOneInProgressKept()
    {
        using var temp = new TempDirectory();
        var databasePath = await CreateDatabaseWithBotsAsync(temp.File("holdfast.db"), 3);
        var destination = temp.File("backups/nightly.db");
        Directory.CreateDirectory(temp.File("backups"));
        int deadPid;
        using (var gone = System.Diagnostics.Process.Start("true"))
        {
            await gone.WaitForExitAsync();
            deadPid = gone.Id;
        }

        var abandoned = $"{destination}.partial-{deadPid}-0badc0de";
        await File.WriteAllTextAsync(abandoned, "half a copy");
        await File.WriteAllTextAsync(abandoned + "-journal", "its journal");
        var inProgress = $"{destination}.partial-{Environment.ProcessId}-0000beef";
        await File.WriteAllTextAsync(inProgress, "a copy still being written");

        await SqliteMaintenance.BackupAsync(databasePath, destination);

        (await CountBotsAsync(destination)).ShouldBe(3);
        File.Exists(abandoned).ShouldBeFalse("a copy whose backup process is gone is removed");
        File.Exists(abandoned + "-journal").ShouldBeFalse();
        File.Exists(inProgress).ShouldBeTrue("a copy whose process still runs is left alone");
        Directory.GetFiles(temp.File("backups")).Select(Path.GetFileName).Order(StringComparer.Ordinal)
            .ShouldBe(new[] { "nightly.db", Path.GetFileName(inProgress) }.Order(StringComparer.Ordinal));
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

    [Fact(Timeout = 30_000)]
    public async Task FromOptions_MissingDataDirectory_CreatedOwnerOnlyAndUsable()
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

        (await database.MigrateAsync()).ShouldNotBeEmpty();
        File.Exists(Path.Combine(dataDirectory, "holdfast.db")).ShouldBeTrue();
    }

    [Fact(Timeout = 30_000)]
    public async Task DataDirectoryLock_SecondAcquireWhileHeld_ThrowsNamingHolderAndSinceWhen()
    {
        using var temp = new TempDirectory();
        using var held = DataDirectoryLock.Acquire(temp.Path, "serve", new FixedTime(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero)));

        var ex = Should.Throw<DataDirectoryInUseException>(() => DataDirectoryLock.Acquire(temp.Path, "restore"));

        ex.Message.ShouldContain($"serve (pid {Environment.ProcessId}, since 2030-01-02T03:04:05Z)");
        (await DataDirectoryLock.ProbeAsync(temp.Path)).ShouldNotBeNull().ShouldContain("since 2030-01-02T03:04:05Z");
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

    /// <summary>A migrated database with <paramref name="sessions"/> bots (<c>seed-N</c>), each with a message of <paramref name="messageBytes"/>.</summary>
    internal static async Task SeedLargeMessagesAsync(string path, int sessions, int messageBytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var database = new SqliteDatabase(path, synchronous: "NORMAL");
        await database.MigrateAsync();
        var store = new SqliteBotStore(database, TimeProvider.System);
        var actor = new Actor("seed");
        for (var i = 0; i < sessions; i++)
        {
            var id = $"seed-{i}";
            await store.StartOrReactivateAsync(new StartBotSession(id, "bridge"), actor);
            await store.RecordMessageAsync(id, string.Create(messageBytes, i, (span, n) => span.Fill((char)('a' + (n % 26)))), actor);
        }
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

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
