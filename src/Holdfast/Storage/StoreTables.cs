namespace Holdfast.Storage;

/// <summary>
/// Which tables a store move (export/import) copies, and in what order. The providers read the tables and their
/// foreign keys from the schema itself, so a table added by a future migration is moved without anyone updating a
/// list; this class decides the order from what they read.
/// </summary>
public static class StoreTables
{
    /// <summary>The migrations ledger: every store has its own, so it is never moved.</summary>
    public const string MigrationsTable = "schema_migrations";

    /// <summary>
    /// The tables of <paramref name="parentsByTable"/> (each table with the tables its foreign keys reference) except
    /// <see cref="MigrationsTable"/>, parents before children, ties by name (ordinal), so every provider gives the
    /// same order for the same schema. A reference to a table outside the map, or to the table itself, is ignored.
    /// Throws <see cref="InvalidOperationException"/> on a foreign-key cycle (which no Holdfast schema has).
    /// </summary>
    public static IReadOnlyList<string> ParentsFirst(IReadOnlyDictionary<string, IReadOnlyCollection<string>> parentsByTable)
    {
        ArgumentNullException.ThrowIfNull(parentsByTable);
        var remaining = parentsByTable.Keys
            .Where(t => !string.Equals(t, MigrationsTable, StringComparison.Ordinal))
            .ToDictionary(
                t => t,
                t => parentsByTable[t].Where(p => !string.Equals(p, t, StringComparison.Ordinal) && parentsByTable.ContainsKey(p) && !string.Equals(p, MigrationsTable, StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal),
                StringComparer.Ordinal);
        var ordered = new List<string>(remaining.Count);
        while (remaining.Count > 0)
        {
            var next = remaining.Where(kv => kv.Value.Count == 0).Select(kv => kv.Key).Order(StringComparer.Ordinal).FirstOrDefault()
                ?? throw new InvalidOperationException($"The tables {string.Join(", ", remaining.Keys.Order(StringComparer.Ordinal))} reference each other in a cycle; a store move cannot order them.");
            ordered.Add(next);
            remaining.Remove(next);
            foreach (var parents in remaining.Values)
            {
                parents.Remove(next);
            }
        }

        return ordered;
    }
}
