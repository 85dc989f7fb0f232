using System.Globalization;
using System.Text;
using Holdfast.Storage.Migrations;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// The whole PostgreSQL schema as one script (<c>holdfast migrate --print --provider postgres</c>): every migration in
/// order, then its row in <c>schema_migrations</c> with its checksum, all in one transaction under the migration
/// advisory lock. It runs as it is in the Supabase SQL editor or through <c>psql</c>; every statement is idempotent, so
/// running it again changes nothing; and a node started afterwards finds every migration recorded, so it neither
/// applies nor refuses anything.
/// </summary>
public static class PostgresSchemaScript
{
    /// <summary>The script for <paramref name="migrations"/> (default: every embedded migration).</summary>
    public static string Build(IReadOnlyList<Migration>? migrations = null)
    {
        migrations ??= PostgresMigrations.Load();
        var script = new StringBuilder();
        script.Append(CultureInfo.InvariantCulture, $"""
            -- Holdfast schema for PostgreSQL / Supabase: {migrations.Count} migrations, up to {migrations[^1].Id}.
            -- Paste into the Supabase SQL editor (or run with psql -v ON_ERROR_STOP=1 -f FILE). Safe to run again: every
            -- statement is idempotent, and each migration is recorded in schema_migrations with its checksum, so
            -- `holdfast serve --store …` starts on this database without applying or refusing anything.
            -- Row-level security is on for every table with no policy: only the role Holdfast connects as (the table
            -- owner) reads or writes them, never Supabase's anon or authenticated roles.

            BEGIN;
            SET LOCAL client_min_messages = warning;
            SELECT pg_advisory_xact_lock({PostgresDatabase.MigrationLockKey});

            """);
        script.Append('\n');
        foreach (var migration in migrations)
        {
            script.Append(CultureInfo.InvariantCulture, $"-- {migration.Id} (sha256 {migration.Checksum})\n");
            script.Append(migration.Sql.TrimEnd('\n'));
            script.Append("\n\n");
            script.Append(CultureInfo.InvariantCulture, $"""
                INSERT INTO public.schema_migrations (version, name, checksum)
                VALUES ({migration.Version}, '{migration.Name.Replace("'", "''", StringComparison.Ordinal)}', '{migration.Checksum}')
                ON CONFLICT (version) DO NOTHING;
                """);
            script.Append("\n\n");
        }

        script.Append("COMMIT;\n");
        return script.ToString();
    }
}
