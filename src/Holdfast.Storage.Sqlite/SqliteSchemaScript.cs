using System.Text;

namespace Holdfast.Storage.Sqlite;

/// <summary>
/// The whole SQLite schema as SQL for people (<c>holdfast migrate --print</c>): every migration in order, headed by its
/// id and checksum.
/// </summary>
public static class SqliteSchemaScript
{
    public static string Build()
    {
        var script = new StringBuilder();
        foreach (var migration in SqliteDatabase.KnownMigrations)
        {
            script.Append("-- ").Append(migration.Id).Append(" (sha256 ").Append(migration.Checksum).Append(')').AppendLine();
            script.AppendLine(migration.Sql);
        }

        return script.ToString();
    }
}
