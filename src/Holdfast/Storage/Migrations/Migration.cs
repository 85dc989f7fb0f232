using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Holdfast.Sessions;

namespace Holdfast.Storage.Migrations;

/// <summary>One versioned SQL migration file, e.g. <c>migrations/sqlite/0001_foundation.sql</c>.</summary>
public sealed record Migration(int Version, string Name, string Sql, string Checksum)
{
    /// <summary>File name without extension, e.g. <c>0001_foundation</c>.</summary>
    public string Id => $"{Version:D4}_{Name}";
}

/// <summary>
/// The migrations of one provider, loaded from the embedded <c>migrations/&lt;provider&gt;/NNNN_name.sql</c> files.
/// Checksums are SHA-256 of the file text with line endings normalised to LF.
/// </summary>
public static class MigrationCatalog
{
    private const string ResourcePrefix = "Holdfast.Migrations.";

    /// <summary>
    /// All migrations of <paramref name="provider"/> (<c>sqlite</c> or <c>postgres</c>) embedded in
    /// <paramref name="assembly"/> (its provider's assembly; default: the core, which still embeds the PostgreSQL
    /// ones), in version order.
    /// </summary>
    public static IReadOnlyList<Migration> Load(string provider, Assembly? assembly = null)
    {
        assembly ??= typeof(MigrationCatalog).Assembly;
        var prefix = ResourcePrefix + provider + ".";
        var migrations = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var fileName = resource[prefix.Length..];
            migrations.Add(Parse(fileName, ReadResource(assembly, resource)));
        }

        migrations.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 1; i < migrations.Count; i++)
        {
            if (migrations[i].Version == migrations[i - 1].Version)
            {
                throw new StoreSchemaException($"Two {provider} migrations share version {migrations[i].Version}: {migrations[i - 1].Id} and {migrations[i].Id}.");
            }
        }

        if (migrations.Count == 0)
        {
            throw new StoreSchemaException($"No embedded migrations were found for provider '{provider}'.");
        }

        return migrations;
    }

    /// <summary>Parses a migration from its file name (<c>NNNN_name.sql</c>) and text.</summary>
    public static Migration Parse(string fileName, string sql)
    {
        var stem = Path.GetFileNameWithoutExtension(fileName);
        var underscore = stem.IndexOf('_', StringComparison.Ordinal);
        if (underscore <= 0 || !int.TryParse(stem.AsSpan(0, underscore), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version))
        {
            throw new StoreSchemaException($"Migration file '{fileName}' must be named NNNN_what_it_does.sql.");
        }

        var normalized = sql.Replace("\r\n", "\n", StringComparison.Ordinal);
        return new Migration(version, stem[(underscore + 1)..], normalized, ComputeChecksum(normalized));
    }

    /// <summary>SHA-256 of the LF-normalised text, lower-case hex.</summary>
    public static string ComputeChecksum(string sql) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sql.Replace("\r\n", "\n", StringComparison.Ordinal))));

    private static string ReadResource(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)
            ?? throw new StoreSchemaException($"Embedded migration '{resource}' is missing.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}

/// <summary>A migration as recorded in <c>schema_migrations</c>.</summary>
public sealed record AppliedMigration(int Version, string Name, string Checksum, DateTimeOffset AppliedAt);

/// <summary>What a schema check found: applied, pending, and problems that refuse start-up.</summary>
public sealed record MigrationStatus(
    IReadOnlyList<AppliedMigration> Applied,
    IReadOnlyList<Migration> Pending,
    IReadOnlyList<string> Problems)
{
    public bool IsCurrent => Pending.Count == 0 && Problems.Count == 0;
}

/// <summary>
/// Compares recorded migrations with the code's: a checksum mismatch or a version the code does not know is a
/// problem that refuses start-up, with a message that says what to do.
/// </summary>
public static class MigrationPlanner
{
    public static MigrationStatus Compare(string provider, IReadOnlyList<Migration> known, IReadOnlyList<AppliedMigration> applied)
    {
        var problems = new List<string>();
        var byVersion = known.ToDictionary(m => m.Version);
        foreach (var record in applied)
        {
            if (!byVersion.TryGetValue(record.Version, out var migration))
            {
                problems.Add(
                    $"The {provider} database has migration {record.Version:D4}_{record.Name} applied, which this version of Holdfast does not know " +
                    $"(it knows up to {known[^1].Id}). The database is newer than the code: upgrade Holdfast, or restore a backup made by this version.");
                continue;
            }

            if (!string.Equals(migration.Checksum, record.Checksum, StringComparison.OrdinalIgnoreCase))
            {
                problems.Add(
                    $"Migration {migration.Id} was applied with checksum {record.Checksum[..12]}… but the file in this version has {migration.Checksum[..12]}…; " +
                    "the applied schema differs from the code. Restore a backup, or run the Holdfast version that applied it.");
            }
        }

        var appliedVersions = applied.Select(a => a.Version).ToHashSet();
        var pending = known.Where(m => !appliedVersions.Contains(m.Version)).ToList();
        return new MigrationStatus(applied, pending, problems);
    }
}
