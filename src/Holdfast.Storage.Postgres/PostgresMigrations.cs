using System.Text;
using Holdfast.Sessions;
using Holdfast.Storage.Migrations;

namespace Holdfast.Storage.Postgres;

/// <summary>The numbered migrations of <c>migrations/postgres</c>, embedded in this assembly, in version order.</summary>
public static class PostgresMigrations
{
    private const string ResourcePrefix = "Holdfast.Storage.Postgres.Migrations.";

    private static readonly Lazy<IReadOnlyList<Migration>> All = new(LoadEmbedded);

    /// <summary>Every migration, parsed and checksummed like SQLite's (<see cref="MigrationCatalog.Parse"/>).</summary>
    public static IReadOnlyList<Migration> Load() => All.Value;

    private static IReadOnlyList<Migration> LoadEmbedded()
    {
        var assembly = typeof(PostgresMigrations).Assembly;
        var migrations = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)
                ?? throw new StoreSchemaException($"Embedded migration '{resource}' is missing.");
            using var reader = new StreamReader(stream, Encoding.UTF8);
            migrations.Add(MigrationCatalog.Parse(resource[ResourcePrefix.Length..], reader.ReadToEnd()));
        }

        migrations.Sort((a, b) => a.Version.CompareTo(b.Version));
        if (migrations.Count == 0)
        {
            throw new StoreSchemaException("No embedded PostgreSQL migrations were found.");
        }

        for (var i = 1; i < migrations.Count; i++)
        {
            if (migrations[i].Version == migrations[i - 1].Version)
            {
                throw new StoreSchemaException($"Two PostgreSQL migrations share version {migrations[i].Version}: {migrations[i - 1].Id} and {migrations[i].Id}.");
            }
        }

        return migrations;
    }
}
