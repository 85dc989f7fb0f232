using System.CommandLine;
using System.Globalization;
using Holdfast.Bots;
using Holdfast.Cli.Output;
using Holdfast.Hosting;
using Holdfast.Sessions;
using Holdfast.Storage;
using Holdfast.Storage.Migrations;
using Holdfast.Storage.Postgres;
using Holdfast.Storage.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Holdfast.Cli.Commands;

/// <summary>
/// <c>holdfast migrate | backup | restore | check</c>: commands that work on the database file directly. They read the
/// same configuration as <c>holdfast serve</c> (<see cref="HoldfastConfiguration"/>: <c>appsettings.json</c>,
/// environment variables such as <c>Storage__SqliteFile</c>, <c>HOLDFAST_DATA</c>), so they work on the file the
/// service uses. Exit 0 on success; on failure a one-line reason on stderr and exit 1. <c>migrate</c> goes through the
/// store's administration port (<see cref="StoreAccess"/>); <c>backup</c>, <c>restore</c> and <c>check</c> are the SQLite
/// file's own (<see cref="SqliteMaintenance"/>).
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
                var chosen = parseResult.GetValue(provider)!;
                if (chosen == StorageOptions.PostgresProvider)
                {
                    // One script for the Supabase SQL editor (or psql): idempotent, and it records every migration.
                    Console.Out.Write(PostgresSchemaScript.Build());
                    return 0;
                }

                foreach (var migration in SqliteDatabase.KnownMigrations)
                {
                    Console.Out.WriteLine($"-- {migration.Id} (sha256 {migration.Checksum})");
                    Console.Out.WriteLine(migration.Sql);
                }

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
            RefuseOnPostgres(storage, "backup");
            var source = storage.ResolveSqlitePath();
            var destination = Path.GetFullPath(parseResult.GetValue(file)!);
            var check = await SqliteMaintenance.BackupAsync(source, destination, parseResult.GetValue(force), new StderrProgress(), cancellationToken);
            Console.Out.WriteLine($"Backed up {source} to {destination} ({new FileInfo(destination).Length.ToString("N0", CultureInfo.InvariantCulture)} bytes, integrity ok, {check.Migrations.Applied.Count} migration(s)).");
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
            var storage = HoldfastConfiguration.LoadStorageOptions();
            RefuseOnPostgres(storage, "restore");
            var target = storage.ResolveSqlitePath();
            HoldfastPaths.EnsureDirectory(Path.GetDirectoryName(target)!);
            var result = await SqliteMaintenance.RestoreAsync(
                parseResult.GetValue(file)!, target, parseResult.GetValue(force), new StderrProgress(), TimeProvider.System, cancellationToken);
            Console.Out.WriteLine(result.PreviousCopy is null
                ? $"Restored {result.Source.Path} to {result.Target}."
                : $"Restored {result.Source.Path} to {result.Target}; the previous database is kept at {result.PreviousCopy}.");
            if (result.Source.Migrations.Pending.Count > 0)
            {
                Console.Out.WriteLine($"The backup is from an older version: {result.Source.Migrations.Pending.Count} migration(s) will be applied on the next start (or run `holdfast migrate`).");
            }

            return 0;
        }));
        return restore;
    }

    private static Command Check()
    {
        var json = new Option<bool>("--json") { Description = "Print {\"path\", \"integrity\", \"integrity_errors\", \"migrations\", \"ok\"} as JSON." };
        var store = StoreOption.Create();
        var check = new Command("check", "Verify the database: PRAGMA integrity_check (SQLite) and the applied migrations.") { json, store };
        check.SetAction((parseResult, cancellationToken) => RunAsync(async () =>
        {
            var storage = HoldfastConfiguration.GetStorageOptions(StoreOption.Configuration(parseResult.GetValue(store)));
            if (storage.Provider == StorageOptions.PostgresProvider)
            {
                return await CheckPostgresAsync(parseResult.GetValue(store), parseResult.GetValue(json), cancellationToken);
            }

            var path = storage.ResolveSqlitePath();
            var size = File.Exists(path) ? new FileInfo(path).Length : 0;
            var result = size >= LargeFileBytes
                ? await Terminal.WithStderrStatusAsync(
                    string.Create(CultureInfo.InvariantCulture, $"check: verifying {path} ({size / (1024.0 * 1024):0.0} MB)"),
                    () => SqliteMaintenance.CheckAsync(path, cancellationToken))
                : await SqliteMaintenance.CheckAsync(path, cancellationToken);
            var migrations = result.Migrations;
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(new CheckReport(
                    result.Path,
                    result.IntegrityErrors.Count == 0 ? "ok" : "failed",
                    result.IntegrityErrors,
                    new CheckMigrations(
                        migrations.Applied.Count,
                        SqliteDatabase.KnownMigrations.Count,
                        migrations.Pending.Select(m => m.Id).ToList(),
                        migrations.Problems),
                    result.IsHealthy));
            }
            else
            {
                Console.Out.WriteLine($"database:   {result.Path}");
                Console.Out.WriteLine($"integrity:  {(result.IntegrityErrors.Count == 0 ? "ok" : $"{result.IntegrityErrors.Count} problem(s)")}");
                Console.Out.WriteLine($"migrations: {migrations.Applied.Count} applied, {migrations.Pending.Count} pending{(migrations.Problems.Count == 0 ? string.Empty : $", {migrations.Problems.Count} problem(s)")}");
            }

            if (result.IsHealthy)
            {
                return 0;
            }

            var reason = result.IntegrityErrors.Count > 0
                ? $"integrity check failed: {result.IntegrityErrors[0]}"
                : migrations.Problems[0];
            return Fail(reason);
        }));
        return check;
    }

    /// <summary>
    /// <c>check</c> on PostgreSQL: the server answers and the migrations match (the database's own integrity is the
    /// server's business: <c>amcheck</c>, <c>pg_dump</c>).
    /// </summary>
    private static async Task<int> CheckPostgresAsync(string? storeValue, bool json, CancellationToken cancellationToken)
    {
        await using var access = await StoreAccess.OpenAsync(migrate: false, storeValue, cancellationToken);
        var migrations = await access.Administration.GetSchemaStatusAsync(cancellationToken);
        var expected = migrations.Applied.Count + migrations.Pending.Count;
        if (json)
        {
            Terminal.WriteJson(new CheckReport(
                access.Administration.Location,
                "not_checked",
                [],
                new CheckMigrations(migrations.Applied.Count, PostgresMigrations.Load().Count, migrations.Pending.Select(m => m.Id).ToList(), migrations.Problems),
                migrations.Problems.Count == 0));
        }
        else
        {
            Console.Out.WriteLine($"database:   {access.Administration.Location}");
            Console.Out.WriteLine("integrity:  not checked (PostgreSQL: the server's own tools, e.g. amcheck)");
            Console.Out.WriteLine($"migrations: {migrations.Applied.Count} applied, {migrations.Pending.Count} pending of {expected}{(migrations.Problems.Count == 0 ? string.Empty : $", {migrations.Problems.Count} problem(s)")}");
        }

        return migrations.Problems.Count == 0 ? 0 : Fail(migrations.Problems[0]);
    }

    /// <summary><c>backup</c> and <c>restore</c> are SQLite's online backup: on PostgreSQL one line says what to use instead.</summary>
    private static void RefuseOnPostgres(StorageOptions storage, string command)
    {
        if (storage.Provider == StorageOptions.PostgresProvider)
        {
            throw new StoreConfigurationException(
                $"`holdfast {command}` is SQLite's online backup and the store is PostgreSQL ({PostgresConnectionString.Redact(storage.ConnectionString)}): " +
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
    private sealed record CheckReport(string Path, string Integrity, IReadOnlyList<string> IntegrityErrors, CheckMigrations Migrations, bool Ok);

    /// <summary>Applied and expected (known to this version) migrations, the pending ones by id, and problems that refuse start-up.</summary>
    private sealed record CheckMigrations(int Applied, int Expected, IReadOnlyList<string> Pending, IReadOnlyList<string> Problems);

    /// <summary>
    /// Copy progress on stderr, one label per copy (<c>backup</c>, <c>restore: keeping the replaced database</c>,
    /// <c>restore</c>): a live percentage on a terminal, a line per 25% otherwise; silent for one-step copies.
    /// </summary>
    private sealed class StderrProgress : IProgress<CopyProgress>
    {
        private CopyPhase? _phase;
        private int _lastShown = -1;
        private bool _multiStep;

        public void Report(CopyProgress value)
        {
            if (_phase != value.Phase)
            {
                _phase = value.Phase;
                _lastShown = -1;
                _multiStep = false;
            }

            var percent = (int)(value.Fraction * 100);
            var done = value.IsDone;
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
            var line = string.Create(CultureInfo.InvariantCulture, $"{Label(value.Phase)}: {percent,3}% ({value.PagesDone}/{value.PagesTotal} pages)");
            if (interactive)
            {
                Console.Error.Write("\r" + line + (done ? Environment.NewLine : string.Empty));
            }
            else
            {
                Console.Error.WriteLine(line);
            }
        }

        private static string Label(CopyPhase phase) => phase switch
        {
            CopyPhase.KeepPrevious => "restore: keeping the replaced database",
            CopyPhase.Restore => "restore",
            _ => "backup",
        };
    }
}
