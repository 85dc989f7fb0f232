using System.CommandLine;
using Holdfast.Storage;
using Holdfast.Storage.Migrations;
using Holdfast.Storage.Sqlite;

namespace Holdfast.Cli.Commands;

/// <summary><c>holdfast migrate</c> and the other commands that work on the database file directly.</summary>
internal static class MaintenanceCommands
{
    public static void AddTo(RootCommand root)
    {
        var print = new Option<bool>("--print") { Description = "Print the SQL of every migration instead of applying it (paste into the Supabase SQL editor)." };
        var migrate = new Command("migrate", "Apply pending database migrations.") { print };
        migrate.SetAction(async (parseResult, cancellationToken) =>
        {
            if (parseResult.GetValue(print))
            {
                foreach (var migration in MigrationCatalog.Load("sqlite"))
                {
                    Console.Out.WriteLine($"-- {migration.Id} (sha256 {migration.Checksum})");
                    Console.Out.WriteLine(migration.Sql);
                }

                return 0;
            }

            using var database = SqliteDatabase.FromOptions(new StorageOptions());
            var applied = await database.MigrateAsync(cancellationToken);
            Console.Out.WriteLine(applied.Count == 0 ? "Schema is current." : $"Applied {applied.Count} migration(s): {string.Join(", ", applied.Select(m => m.Id))}");
            return 0;
        });
        root.Subcommands.Add(migrate);
    }
}
