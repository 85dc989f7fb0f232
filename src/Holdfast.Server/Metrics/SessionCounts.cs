using System.Globalization;
using System.Text;
using Holdfast.Storage.Sqlite;

namespace Holdfast.Server.Metrics;

/// <summary>
/// Sessions by kind and status, read from the store at scrape time (a gauge per status; the status columns are
/// indexed). Chunks persisted come from the core's <c>holdfast.generation.chunks.committed</c> counter instead of a
/// count over the log, which would grow with every output ever stored.
/// </summary>
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
        foreach (var (kind, status, count) in rows)
        {
            text.Append(CultureInfo.InvariantCulture, $"holdfast_sessions{{kind=\"{kind}\",status=\"{status}\"}} {count}\n");
        }
    }
}
