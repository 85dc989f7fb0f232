using System.Globalization;
using Holdfast.Audit;
using Holdfast.Sessions;
using Npgsql;

namespace Holdfast.Storage.Postgres;

/// <summary><see cref="IAuditLog"/> over the PostgreSQL <c>session_events</c> table.</summary>
internal sealed class PostgresAuditLog : IAuditLog
{
    private readonly PostgresDatabase _database;

    public PostgresAuditLog(PostgresDatabase database)
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
            async (connection, ct) =>
            {
                await using var command = new NpgsqlCommand(
                    """
                    SELECT seq, occurred_at, actor, action, from_state, to_state, detail
                    FROM session_events
                    WHERE session_kind = @kind AND session_id = @id AND (@before::bigint IS NULL OR seq < @before)
                    ORDER BY seq DESC
                    LIMIT @limit
                    """,
                    connection);
                command.Parameters.Add(Pg.Text("kind", kind.ToWire()));
                command.Parameters.Add(Pg.Text("id", sessionId));
                command.Parameters.Add(Pg.Bigint("before", beforeSeq));
                command.Parameters.Add(Pg.Integer("limit", limit + 1));
                var events = new List<AuditEvent>();
                await using (var reader = await command.ExecuteReaderAsync(ct))
                {
                    while (await reader.ReadAsync(ct))
                    {
                        events.Add(new AuditEvent(
                            kind, sessionId, reader.GetInt64(0), reader.Time(1), reader.GetString(2), reader.GetString(3),
                            reader.NullableString(4), reader.NullableString(5), reader.NullableString(6)));
                    }
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
}
