using System.Globalization;
using Holdfast.Audit;
using Holdfast.Sessions;

namespace Holdfast.Storage.Sqlite;

/// <summary><see cref="IAuditLog"/> over the SQLite <c>session_events</c> table.</summary>
internal sealed class SqliteAuditLog : IAuditLog
{
    private readonly SqliteDatabase _database;

    public SqliteAuditLog(SqliteDatabase database)
    {
        _database = database;
    }

    public async Task<AuditPage> ReadAuditAsync(SessionKind kind, string sessionId, long? beforeSeq = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(sessionId))
        {
            throw new InvalidSessionInputException("session_id", "'session_id' is required.");
        }

        if (limit is < 1 or > 1000)
        {
            throw new InvalidSessionInputException("limit", string.Create(CultureInfo.InvariantCulture, $"'limit' must be between 1 and 1000; it was {limit}."));
        }

        return await _database.ReadAsync(
            async connection =>
            {
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    SELECT seq, occurred_at, actor, action, from_state, to_state, detail
                    FROM session_events
                    WHERE session_kind = $kind AND session_id = $id AND ($before IS NULL OR seq < $before)
                    ORDER BY seq DESC
                    LIMIT $limit
                    """;
                command.Parameters.AddWithValue("$kind", kind.ToWire());
                command.Parameters.AddWithValue("$id", sessionId);
                command.Parameters.AddWithValue("$before", (object?)beforeSeq ?? DBNull.Value);
                command.Parameters.AddWithValue("$limit", limit + 1);
                var events = new List<AuditEvent>();
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    events.Add(Map(reader, kind, sessionId));
                }

                if (events.Count > limit)
                {
                    events.RemoveAt(events.Count - 1);
                    return new AuditPage(events, events[^1].Seq);
                }

                return new AuditPage(events, null);
            },
            cancellationToken);
    }

    private static AuditEvent Map(Microsoft.Data.Sqlite.SqliteDataReader reader, SessionKind kind, string sessionId) => new(
        kind,
        sessionId,
        reader.GetInt64(0),
        SqliteTime.Parse(reader.GetString(1)),
        reader.GetString(2),
        reader.GetString(3),
        reader.IsDBNull(4) ? null : reader.GetString(4),
        reader.IsDBNull(5) ? null : reader.GetString(5),
        reader.IsDBNull(6) ? null : reader.GetString(6));
}
