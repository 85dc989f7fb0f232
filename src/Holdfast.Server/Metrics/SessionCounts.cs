using System.Globalization;
using System.Text;
using Holdfast.Storage.Sqlite;

namespace Holdfast.Server.Metrics;

/// <summary>Sessions by kind and status, read from the store at scrape time (a gauge per status).</summary>
internal sealed class SessionCounts(SqliteDatabase database)
{
    public async Task AppendAsync(StringBuilder text, CancellationToken cancellationToken)
    {
        var rows = await database.ReadAsync(
            async connection =>
            {
                var result = new List<(string Kind, string Status, long Count)>();
                await using var command = connection.CreateCommand();
                command.CommandText = """
                    SELECT 'bot', status, COUNT(*) FROM bot_sessions GROUP BY status
                    UNION ALL
                    SELECT 'generation', status, COUNT(*) FROM generation_sessions GROUP BY status
                    UNION ALL
                    SELECT 'chunks', 'persisted', COUNT(*) FROM generation_log WHERE type = 'chunk'
                    """;
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    result.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2)));
                }

                return result;
            },
            cancellationToken);
        text.Append("# HELP holdfast_sessions Sessions by kind and status.\n# TYPE holdfast_sessions gauge\n");
        foreach (var (kind, status, count) in rows.Where(r => r.Kind != "chunks"))
        {
            text.Append(CultureInfo.InvariantCulture, $"holdfast_sessions{{kind=\"{kind}\",status=\"{status}\"}} {count}\n");
        }

        var chunks = rows.Where(r => r.Kind == "chunks").Sum(r => r.Count);
        text.Append("# HELP holdfast_chunks_persisted Output chunks stored in the durable log (all sessions).\n# TYPE holdfast_chunks_persisted gauge\n");
        text.Append(CultureInfo.InvariantCulture, $"holdfast_chunks_persisted {chunks}\n");
    }
}
