using System.CommandLine;
using System.Globalization;
using Holdfast.Bots;
using Holdfast.Cli.Output;
using Holdfast.Hosting;
using Holdfast.Sessions;
using Holdfast.Storage;
using Holdfast.Server.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Holdfast.Cli.Commands;

/// <summary>
/// <c>holdfast migrate | backup | restore | check</c>: commands that work on the database file directly. They read the
/// same configuration as <c>holdfast serve</c> (<see cref="HoldfastConfiguration"/>: <c>appsettings.json</c>,
/// environment variables such as <c>Storage__SqliteFile</c>, <c>HOLDFAST_DATA</c>), so they work on the file the
/// service uses. Exit 0 on success; on failure a one-line reason on stderr and exit 1. Every command goes through the
/// store's administration port (<see cref="StoreAccess"/>, <see cref="IStoreAdministration"/>); what is the SQLite file's
/// own (online backup, restore, the file lock) stays behind that port.
/// </summary>
internal static class MaintenanceCommands
{
    /// <summary>From this size on, <c>check</c> shows its status on stderr (like a copy of more than one backup step).</summary>
    internal const long LargeFileBytes = 1024 * 1024;

    public static void AddTo(RootCommand root)
    {
        root.Subcommands.Add(Migrate());
        root.Subcommands.Add(Backup());
        root.Subcommands.Add(Restore());
        root.Subcommands.Add(Check());
    }

    private static Command Migrate()
    {
        var print = new Option<bool>("--print") { Description = "Print the SQL of every migration instead of applying it (paste into the Supabase SQL editor)." };
        var provider = new Option<string>("--provider") { Description = "With --print: sqlite (default) or postgres.", DefaultValueFactory = _ => "sqlite" };
        provider.AcceptOnlyFromAmong("sqlite", "postgres");
        var store = StoreOption.Create();
        var migrate = new Command("migrate", "Apply pending database migrations (or print them).") { print, provider, store };
        migrate.SetAction((parseResult, cancellationToken) => RunAsync(async () =>
        {
            if (parseResult.GetValue(print))
            {
                // PostgreSQL: one script for the Supabase SQL editor (or psql), idempotent, recording every migration.
                Console.Out.Write(StorageRegistration.SchemaScript(parseResult.GetValue(provider)!));
                return 0;
            }

            await using var access = await StoreAccess.OpenAsync(migrate: false, parseResult.GetValue(store), cancellationToken);
            var applied = await access.Administration.MigrateAsync(cancellationToken);
            Console.Out.WriteLine(applied.Count == 0
                ? $"Schema is current ({access.Administration.Location})."
                : $"Applied {applied.Count} migration(s) to {access.Administration.Location}: {string.Join(", ", applied.Select(m => m.Id))}");
            return 0;
        }));
        return migrate;
    }

    private static Command Backup()
    {
        var file = new Argument<string>("FILE") { Description = "Where to write the copy (a single SQLite file)." };
        var force = new Option<bool>("--force") { Description = "Overwrite FILE if it exists." };
        var backup = new Command("backup", "Copy the database to FILE while the service keeps running (SQLite online backup).") { file, force };
        backup.SetAction((parseResult, cancellationToken) => RunAsync(async () =>
        {
            var configuration = HoldfastConfiguration.Build();
            var storage = HoldfastConfiguration.GetStorageOptions(configuration);
            await using var access = await StoreAccess.OpenAsync(migrate: false, cancellationToken);
            RefuseWithoutOnlineBackup(access.Administration, "backup");
            var destination = Path.GetFullPath(parseResult.GetValue(file)!);
            var copy = await access.Administration.BackupAsync(destination, parseResult.GetValue(force), new StderrProgress(), cancellationToken);
            Console.Out.WriteLine($"Backed up {copy.Source} to {copy.Destination} ({copy.Bytes.ToString("N0", CultureInfo.InvariantCulture)} bytes, integrity ok, {copy.AppliedMigrations} migration(s)).");
            if (AuthStateKeyNote(configuration, storage) is { } note)
            {
                Console.Out.WriteLine(note);
            }

            return 0;
        }));
        return backup;
    }

    private static Command Restore()
    {
        var file = new Argument<string>("FILE") { Description = "A backup made by `holdfast backup`." };
        var force = new Option<bool>("--force") { Description = "Restore even while a service uses the data directory (one on another database file). Never while a server holds the database itself: stop it first." };
        var restore = new Command("restore", "Replace the database with FILE (verified first; the replaced database is kept as a .bak file).") { file, force };
        restore.SetAction((parseResult, cancellationToken) => RunAsync(async () =>
        {
            await using var access = await StoreAccess.OpenAsync(migrate: false, cancellationToken);
            RefuseWithoutOnlineBackup(access.Administration, "restore");
            var result = await access.Administration.RestoreAsync(parseResult.GetValue(file)!, parseResult.GetValue(force), new StderrProgress(), cancellationToken);
            Console.Out.WriteLine(result.PreviousCopy is null
                ? $"Restored {result.Source} to {result.Target}."
                : $"Restored {result.Source} to {result.Target}; the previous database is kept at {result.PreviousCopy}.");
            if (result.PendingMigrations > 0)
            {
                Console.Out.WriteLine($"The backup is from an older version: {result.PendingMigrations} migration(s) will be applied on the next start (or run `holdfast migrate`).");
            }

            return 0;
        }));
        return restore;
    }

    private static Command Check()
    {
        var json = new Option<bool>("--json") { Description = "Print {\"path\", \"integrity\", \"integrity_errors\", \"method\", \"migrations\", \"ok\"} as JSON." };
        var store = StoreOption.Create();
        var check = new Command("check", "Verify the store: PRAGMA integrity_check (SQLite) or a read of every row of every table (PostgreSQL), and the applied migrations.") { json, store };
        check.SetAction((parseResult, cancellationToken) => RunAsync(async () =>
        {
            _ = HoldfastConfiguration.GetStorageOptions(StoreOption.Configuration(parseResult.GetValue(store)));
            await using var access = await StoreAccess.OpenAsync(migrate: false, parseResult.GetValue(store), cancellationToken);
            var administration = access.Administration;
            var size = await administration.MeasureSizeAsync(cancellationToken);
            var result = size >= LargeFileBytes
                ? await Terminal.WithStderrStatusAsync(
                    string.Create(CultureInfo.InvariantCulture, $"check: verifying {administration.Location} ({size / (1024.0 * 1024):0.0} MB)"),
                    () => administration.CheckIntegrityAsync(StoreCheckDepth.Full, cancellationToken: cancellationToken))
                : await administration.CheckIntegrityAsync(StoreCheckDepth.Full, cancellationToken: cancellationToken);
            var migrations = result.Migrations!;
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(new CheckReport(
                    result.Location,
                    result.Integrity == StoreIntegrity.Damaged ? "failed" : "ok",
                    result.Problems,
                    result.Method,
                    new CheckMigrations(
                        migrations.Applied.Count,
                        result.KnownMigrations,
                        migrations.Pending.Select(m => m.Id).ToList(),
                        migrations.Problems),
                    result.IsHealthy));
            }
            else
            {
                Console.Out.WriteLine($"database:   {result.Location}");
                Console.Out.WriteLine($"integrity:  {(result.Problems.Count == 0 ? "ok" : $"{result.Problems.Count} problem(s)")} ({result.Method})");
                Console.Out.WriteLine($"migrations: {migrations.Applied.Count} applied, {migrations.Pending.Count} pending{(migrations.Problems.Count == 0 ? string.Empty : $", {migrations.Problems.Count} problem(s)")}");
            }

            if (result.IsHealthy)
            {
                return 0;
            }

            var reason = result.Problems.Count > 0
                ? $"integrity check failed: {result.Problems[0]}"
                : migrations.Problems[0];
            return Fail(reason);
        }));
        return check;
    }

    /// <summary><c>backup</c> and <c>restore</c> are an online copy of the store (SQLite's); elsewhere one line says what to use instead.</summary>
    private static void RefuseWithoutOnlineBackup(IStoreAdministration administration, string command)
    {
        if (!administration.SupportsOnlineBackup)
        {
            throw new StoreConfigurationException(
                $"`holdfast {command}` is SQLite's online backup and the store is {administration.Provider} ({administration.Location}): " +
                "use `holdfast export FILE` / `holdfast import FILE --store …`, or pg_dump / pg_restore.");
        }
    }

    /// <summary>
    /// The reminder that bot login state in a backup is encrypted with a key that is not in it (the configured
    /// <c>Bots:AuthStateKey</c>, or the key file in the data directory); null when there is no key yet.
    /// </summary>
    private static string? AuthStateKeyNote(IConfiguration configuration, StorageOptions storage)
    {
        var bots = configuration.GetSection(BotOptions.SectionName).Get<BotOptions>() ?? new BotOptions();
        if (!string.IsNullOrWhiteSpace(bots.AuthStateKey))
        {
            return $"Bot login state in the backup is encrypted with the key in {BotOptions.SectionName}:{nameof(BotOptions.AuthStateKey)}, which is not in the backup: keep it with the backup.";
        }

        var keyFile = BotAuthStateProtector.ResolveKeyFilePath(bots, storage);
        return File.Exists(keyFile)
            ? $"Bot login state in the backup is encrypted with {keyFile}, which is not in the backup: keep a copy of it too."
            : null;
    }

    private static async Task<int> RunAsync(Func<Task<int>> work)
    {
        try
        {
            return await work();
        }
        catch (StoreUnavailableException ex)
        {
            return Fail(ex.Message, ExitCodes.CannotConnect);
        }
        catch (Exception ex) when (ex is StoreConfigurationException or StoreSchemaException)
        {
            return Fail(ex.Message, ExitCodes.Usage);
        }
        catch (HoldfastException ex)
        {
            return Fail(ex.Message);
        }
        catch (OptionsValidationException ex)
        {
            return Fail(ex.Message, ExitCodes.Usage);
        }
        catch (System.Data.Common.DbException ex)
        {
            return Fail($"Database error: {ex.Message}");
        }
        catch (IOException ex)
        {
            return Fail(ex.Message);
        }
        catch (UnauthorizedAccessException ex)
        {
            return Fail(ex.Message);
        }
    }

    private static int Fail(string reason, int exitCode = ExitCodes.Error)
    {
        Console.Error.WriteLine("holdfast: " + string.Join(' ', reason.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
        return exitCode;
    }

    /// <summary>What <c>holdfast check --json</c> prints (snake_case).</summary>
    private sealed record CheckReport(string Path, string Integrity, IReadOnlyList<string> IntegrityErrors, string Method, CheckMigrations Migrations, bool Ok);

    /// <summary>Applied and expected (known to this version) migrations, the pending ones by id, and problems that refuse start-up.</summary>
    private sealed record CheckMigrations(int Applied, int Expected, IReadOnlyList<string> Pending, IReadOnlyList<string> Problems);

    /// <summary>
    /// Copy progress on stderr, one label per copy (<c>backup</c>, <c>restore: keeping the replaced database</c>,
    /// <c>restore</c>): a live percentage on a terminal, a line per 25% otherwise; silent for one-step copies.
    /// </summary>
    private sealed class StderrProgress : IProgress<StoreProgress>
    {
        private string? _phase;
        private int _lastShown = -1;
        private bool _multiStep;

        public void Report(StoreProgress value)
        {
            if (!string.Equals(_phase, value.Phase, StringComparison.Ordinal))
            {
                _phase = value.Phase;
                _lastShown = -1;
                _multiStep = false;
            }

            var percent = (int)(value.Total == 0 ? 100 : value.Done * 100 / value.Total);
            var done = value.Done >= value.Total;
            if (!_multiStep && done)
            {
                return;
            }

            _multiStep = true;
            var interactive = !Console.IsErrorRedirected;
            if (!done && percent == _lastShown)
            {
                return;
            }

            if (!interactive && !done && _lastShown >= 0 && percent / 25 == _lastShown / 25)
            {
                return;
            }

            _lastShown = percent;
            var line = string.Create(CultureInfo.InvariantCulture, $"{value.Phase}: {percent,3}% ({value.Done}/{value.Total} pages)");
            if (interactive)
            {
                Console.Error.Write("\r" + line + (done ? Environment.NewLine : string.Empty));
            }
            else
            {
                Console.Error.WriteLine(line);
            }
        }
    }
}
