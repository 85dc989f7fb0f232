using System.Net;
using System.Text;
using System.Text.Json;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Cli.Tests;

/// <summary>
/// <c>holdfast serve</c>, <c>backup</c> and <c>restore</c> as real processes against what the file system does to them:
/// a lax umask, a database shared by two servers, a read-only directory, a damaged file, a full disk (a small tmpfs
/// mounted in a mount namespace of the server's own, so nothing outside the test sees it).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class StorageRobustnessTests
{
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    [Fact(Timeout = 180_000)]
    public async Task ServeAndBackup_UmaskZero_EveryFileOwnerOnlyAndDataDirectory0700()
    {
        // A data directory that does not exist yet, so serve creates it; the socket stays where the harness looks.
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal);
        await using var server = new ServerProcess(settings: settings, wrapper: CliProcess.WithUmask("000"));
        var dataDirectory = server.Data.File("data");
        settings["Storage__DataDirectory"] = dataDirectory;
        settings["Server__SocketPath"] = server.SocketPath;
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal) { ["Storage__DataDirectory"] = dataDirectory };
        await server.StartAsync();
        var id = (await CliProcess.RunAsync(["gen", "start", "--model", "scripted", "hello"], server.Environment)).Stdout.Trim();
        id.ShouldNotBeNullOrEmpty();
        (await CliProcess.RunAsync(["bot", "start", "modes-bot"], server.Environment)).ExitCode.ShouldBe(0);
        var backupFile = server.Data.File("backups/nightly.db");

        var backup = await CliProcess.RunAsync(["backup", backupFile], environment, wrapper: CliProcess.WithUmask("000"));
        (await server.StopAsync()).ShouldBe(0, server.Log);
        var restore = await CliProcess.RunAsync(["restore", backupFile], environment, wrapper: CliProcess.WithUmask("000"));

        backup.ExitCode.ShouldBe(0, backup.ToString());
        restore.ExitCode.ShouldBe(0, restore.ToString());
        File.GetUnixFileMode(dataDirectory).ShouldBe(OwnerOnlyDirectory, "the data directory serve created");
        var files = Directory.GetFiles(dataDirectory).Append(backupFile).ToList();
        files.Select(Path.GetFileName).ShouldContain("holdfast.db");
        files.Select(Path.GetFileName).ShouldContain("holdfast.db.lock");
        files.Select(Path.GetFileName).ShouldContain("holdfast.lock");
        files.Select(Path.GetFileName).ShouldContain("bot-auth-state.key");
        files.ShouldContain(f => f.EndsWith(".bak", StringComparison.Ordinal), "restore kept the replaced database");
        foreach (var file in files)
        {
            File.GetUnixFileMode(file).ShouldBe(OwnerOnlyFile, $"{file} (umask 000)");
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task ServeAndBackup_WalAndOwnerNotesWhileRunning_OwnerOnlyUnderUmaskZero()
    {
        await using var server = await ServerProcess.StartNewAsync(wrapper: CliProcess.WithUmask("000"));
        var id = (await CliProcess.RunAsync(["gen", "start", "--model", "scripted", "hello"], server.Environment)).Stdout.Trim();
        id.ShouldNotBeNullOrEmpty();

        var live = Directory.GetFiles(server.Data.Path).Where(f => !f.EndsWith(".sock", StringComparison.Ordinal)).ToList();

        live.Select(Path.GetFileName).ShouldContain("holdfast.db-wal");
        live.Select(Path.GetFileName).ShouldContain("holdfast.db-shm");
        live.Select(Path.GetFileName).ShouldContain("holdfast.lock.owner");
        live.Select(Path.GetFileName).ShouldContain("holdfast.db.lock.owner");
        foreach (var file in live)
        {
            File.GetUnixFileMode(file).ShouldBe(OwnerOnlyFile, $"{file} (umask 000)");
        }

        File.GetUnixFileMode(server.SocketPath).ShouldBe(OwnerOnlyFile);
    }

    [Fact(Timeout = 180_000)]
    public async Task Serve_SecondServerOtherDataDirectorySameSqliteFile_Exit2OneLineFirstKeepsServing()
    {
        using var shared = new TempDirectory("holdfast-shared-db");
        var databasePath = shared.File("team.db");
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal) { ["Storage__SqliteFile"] = databasePath };
        await using var first = await ServerProcess.StartNewAsync(settings: settings);
        using var otherData = new TempDirectory("holdfast-second");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["HOLDFAST_DATA"] = otherData.Path,
            ["Storage__SqliteFile"] = databasePath,
        };

        var second = await CliProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0", "--backend", "scripted"], environment);

        second.ExitCode.ShouldBe(2, second.ToString());
        var line = second.Stderr.Trim().Split('\n').ShouldHaveSingleItem(second.ToString());
        line.ShouldStartWith($"holdfast serve: Another Holdfast server is already using the database '{databasePath}': it is held by holdfast serve (pid ");
        line.ShouldContain("Storage:SqliteFile");
        File.Exists(Path.Combine(otherData.Path, "holdfast.sock")).ShouldBeFalse("the second server never listened");
        using var client = Holdfast.Client.HoldfastClient.ForUnixSocket(first.SocketPath);
        (await client.PingAsync()).ShouldBeTrue("the first server keeps serving");
    }

    [Fact(Timeout = 180_000)]
    public async Task RestoreForce_WhileServeHoldsTheDatabase_RefusedSayingSoAndNothingReplaced()
    {
        await using var server = await ServerProcess.StartNewAsync();
        using var backups = new TempDirectory("holdfast-backups");
        var backupFile = backups.File("before.db");
        (await CliProcess.RunAsync(["backup", backupFile], server.Environment)).ExitCode.ShouldBe(0);
        var id = (await CliProcess.RunAsync(["gen", "start", "--model", "scripted", "after the backup"], server.Environment)).Stdout.Trim();

        var restore = await CliProcess.RunAsync(["restore", "--force", backupFile], server.Environment);

        restore.ExitCode.ShouldBe(1, restore.ToString());
        var line = restore.Stderr.Trim().Split('\n').ShouldHaveSingleItem(restore.ToString());
        line.ShouldStartWith($"holdfast: Refusing to restore: the database '{Path.Combine(server.Data.Path, "holdfast.db")}' is in use by holdfast serve (pid ");
        line.ShouldContain("even with --force");
        line.ShouldContain("kill -TERM");
        Directory.GetFiles(server.Data.Path, "*.bak").ShouldBeEmpty();
        var show = await CliProcess.RunAsync(["gen", "show", id], server.Environment);
        show.ExitCode.ShouldBe(0, "the session created after the backup is still there: " + show);
    }

    [Fact(Timeout = 120_000)]
    public async Task Serve_ReadOnlyDataDirectory_Exit2NamingTheCauseNotAnotherServer()
    {
        using var data = new TempDirectory("holdfast-readonly");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path };

        var result = await CliProcess.RunAsync(
            ["serve", "--urls", "http://127.0.0.1:0", "--socket", "none"],
            environment,
            wrapper: CliProcess.InMountNamespace($"mount --bind '{data.Path}' '{data.Path}' && mount -o remount,bind,ro '{data.Path}'"));

        result.ExitCode.ShouldBe(2, result.ToString());
        var line = result.Stderr.Trim().Split('\n').ShouldHaveSingleItem(result.ToString());
        line.ShouldStartWith($"holdfast serve: Cannot write in '{data.Path}': ");
        line.ShouldContain("Read-only file system");
        line.ShouldNotContain("already running");
        Directory.GetFiles(data.Path).ShouldBeEmpty();
    }

    [Fact(Timeout = 180_000)]
    public async Task Serve_DatabaseDamagedInTheMiddle_Exit2OneLineNamingTheFileAndRestore()
    {
        using var data = new TempDirectory("holdfast-damaged");
        var databasePath = data.File("holdfast.db");
        await SeedAndDamageAsync(databasePath);
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path };

        var result = await CliProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0", "--backend", "scripted"], environment);

        result.ExitCode.ShouldBe(2, result.ToString());
        var line = result.Stderr.Trim().Split('\n').ShouldHaveSingleItem(result.ToString());
        line.ShouldStartWith($"holdfast serve: The database '{databasePath}' is damaged (");
        line.ShouldContain("holdfast restore");
        File.Exists(data.File("holdfast.sock")).ShouldBeFalse("it never listened");
    }

    [Fact(Timeout = 180_000)]
    public async Task Serve_StartupCheckLongerThanStartupCheckTimeout_SkippedWithAWarningAndServes()
    {
        // Arrange: a sound 24 MB database whose quick_check cannot finish in a millisecond.
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal) { ["Storage__StartupCheckTimeout"] = "00:00:00.001" };
        await using var server = new ServerProcess(settings: settings);
        var databasePath = Path.Combine(server.Data.Path, "holdfast.db");
        await SqliteFiles.CreateLargeAsync(databasePath, rows: 6_000);

        // Act
        await server.StartAsync();

        // Assert: it serves, and says the check was cut short and how to run it in full.
        var id = (await CliProcess.RunAsync(["gen", "start", "--model", "scripted", "hello"], server.Environment)).Stdout.Trim();
        id.ShouldNotBeNullOrEmpty(server.Log);
        server.Log.ShouldContain($"The start-up integrity check (PRAGMA quick_check) of {databasePath} did not finish within 1 ms (Storage:StartupCheckTimeout) and was skipped");
        server.Log.ShouldContain("holdfast check");
    }

    [Fact(Timeout = 120_000)]
    public async Task Serve_DiskAlreadyFull_Exit2OneLineSayingSo()
    {
        using var data = new TempDirectory("holdfast-full");
        var disk = data.File("disk");
        Directory.CreateDirectory(disk);
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["HOLDFAST_DATA"] = Path.Combine(disk, "data"),
        };

        var result = await CliProcess.RunAsync(
            ["serve", "--urls", "http://127.0.0.1:0", "--backend", "scripted", "--socket", "none"],
            environment,
            wrapper: CliProcess.InMountNamespace($"mount -t tmpfs -o size=1m tmpfs '{disk}' && {{ head -c 4194304 /dev/zero > '{disk}/filler' 2>/dev/null || true; }}"));

        result.ExitCode.ShouldBe(2, result.ToString());
        var line = result.Stderr.Trim().Split('\n').ShouldHaveSingleItem(result.ToString());
        line.ShouldStartWith($"holdfast serve: Cannot start: the database '{Path.Combine(disk, "data", "holdfast.db")}' cannot be written: the disk is full");
        line.ShouldContain("Free some space");
    }

    [Fact(Timeout = 300_000)]
    public async Task Serve_DiskFillsWhileRunning_503WithRetryAfterReadyz503NoAcknowledgedControlLostAndRecoversWhenSpaceReturns()
    {
        // Arrange: the data directory on an 8 MB tmpfs only the server sees; the socket outside it.
        using var outside = new TempDirectory("holdfast-diskfull");
        var disk = outside.File("disk");
        Directory.CreateDirectory(disk);
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Storage__DataDirectory"] = Path.Combine(disk, "data"),
            ["Scripted__TokensPerSecond"] = "20",
            ["Scripted__MaxTokens"] = "100000",
            ["Generation__CommitRetryLimit"] = "00:05:00",
        };
        await using var server = new ServerProcess(settings: settings, wrapper: CliProcess.InMountNamespace($"mount -t tmpfs -o size=8m tmpfs '{disk}'"));
        settings["Server__SocketPath"] = server.SocketPath;
        await server.StartAsync();
        using var http = UnixSocketHttp.Create(server.SocketPath);
        var running = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            using var created = await http.PostAsync("/api/v1/generations", Json("""{"model":"scripted","input":"a long story"}"""));
            created.StatusCode.ShouldBe(HttpStatusCode.Created);
            running.Add(await IdOfAsync(created));
        }

        await Poll.UntilAsync(async () => (await StatusAsync(http, running[^1])) == "running", "the sessions run");

        // Act 1: fill the disk.
        var filler = $"/proc/{server.ProcessId}/root{disk}/filler";
        await FillAsync(filler);

        // A create fails with 503, Retry-After and a message (not 500), within a few group commits.
        HttpResponseMessage? refused = null;
        await Poll.UntilAsync(
            async () =>
            {
                var response = await http.PostAsync("/api/v1/generations", Json("""{"model":"scripted","input":"while full"}"""));
                ((int)response.StatusCode).ShouldBeOneOf([201, 503], await response.Content.ReadAsStringAsync());
                if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                {
                    refused = response;
                    return true;
                }

                running.Add(await IdOfAsync(response));
                response.Dispose();
                return false;
            },
            "a create refused with 503 once the disk is full",
            TimeSpan.FromSeconds(60),
            TimeSpan.FromMilliseconds(100));
        using (refused)
        {
            refused!.Headers.RetryAfter.ShouldNotBeNull();
            (await refused.Content.ReadAsStringAsync()).ShouldContain("the disk is full");
        }

        await Poll.UntilAsync(
            async () =>
            {
                using var ready = await http.GetAsync("/readyz");
                return ready.StatusCode == HttpStatusCode.ServiceUnavailable && ready.Headers.RetryAfter is not null;
            },
            "/readyz 503 with Retry-After while writes fail",
            TimeSpan.FromSeconds(30));

        // Controls while full: each is acknowledged (stored) or refused with 503, never a 500.
        var acknowledged = new Dictionary<string, string>(StringComparer.Ordinal);
        var refusedControls = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (id, index) in running.Select((id, index) => (id, index)))
        {
            var verb = index % 3 == 0 ? "cancel" : "pause";
            using var control = await http.PostAsync($"/api/v1/generations/{id}/{verb}", Json("{}"));
            ((int)control.StatusCode).ShouldBeOneOf([200, 503], await control.Content.ReadAsStringAsync());
            if (control.StatusCode == HttpStatusCode.OK)
            {
                acknowledged[id] = verb;
            }
            else
            {
                control.Headers.RetryAfter.ShouldNotBeNull();
                refusedControls[id] = verb;
            }
        }

        refusedControls.ShouldNotBeEmpty("the disk was full when the controls were sent");

        // Act 2: space returns.
        File.Delete(filler);

        // Assert: ready again by itself, writes work, nothing acknowledged was lost.
        await Poll.UntilAsync(
            async () => (await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK,
            "/readyz 200 once space returns",
            TimeSpan.FromSeconds(30));
        using (var after = await http.PostAsync("/api/v1/generations", Json("""{"model":"scripted","input":"after"}""")))
        {
            after.StatusCode.ShouldBe(HttpStatusCode.Created);
        }

        foreach (var (id, verb) in refusedControls)
        {
            using var retried = await http.PostAsync($"/api/v1/generations/{id}/{verb}", Json("{}"));
            retried.StatusCode.ShouldBe(HttpStatusCode.OK, $"{verb} {id} once space returned");
        }

        foreach (var (id, verb) in acknowledged.Concat(refusedControls))
        {
            var expected = verb == "cancel" ? "cancelled" : "paused";
            await Poll.UntilAsync(async () => await StatusAsync(http, id) == expected, $"{id} ends {expected} ({verb} acknowledged)", TimeSpan.FromSeconds(60));
        }

        server.Log.ShouldNotContain("Unhandled exception");
    }

    private static async Task FillAsync(string path)
    {
        var block = new byte[64 * 1024];
        await using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.None);
        try
        {
            for (var i = 0; i < 1024; i++)
            {
                await stream.WriteAsync(block);
                await stream.FlushAsync();
            }
        }
        catch (IOException)
        {
            // No space left on device: full.
            return;
        }

        throw new InvalidOperationException("64 MB written and the 8 MB tmpfs is still not full: it was not mounted?");
    }

    private static async Task<string?> StatusAsync(HttpClient http, string id)
    {
        using var response = await http.GetAsync($"/api/v1/generations/{id}");
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return null;
        }

        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("status").GetString();
    }

    private static async Task<string> IdOfAsync(HttpResponseMessage response)
    {
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("id").GetString()!;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>A migrated database with 200 bots, its pages 3 to 5 overwritten: damaged in the middle.</summary>
    private static async Task SeedAndDamageAsync(string databasePath)
    {
        using (var database = new SqliteDatabase(databasePath))
        {
            await database.MigrateAsync();
            var store = new SqliteBotStore(database, TimeProvider.System);
            for (var i = 0; i < 200; i++)
            {
                await store.StartOrReactivateAsync(new Holdfast.Bots.StartBotSession($"bot{i}", "bridge"), new Actor("seed"));
            }
        }

        SqliteConnection.ClearAllPools();
        await using (var connection = new SqliteConnection($"Data Source={databasePath};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var checkpoint = connection.CreateCommand();
            checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;";
            await checkpoint.ExecuteNonQueryAsync();
        }

        var bytes = await File.ReadAllBytesAsync(databasePath);
        bytes.Length.ShouldBeGreaterThan(4096 * 8);
        Array.Fill(bytes, (byte)0x5A, 4096 * 3, 4096 * 3);
        await File.WriteAllBytesAsync(databasePath, bytes);
    }
}
