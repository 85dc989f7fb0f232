using System.Globalization;
using System.Text;
using Holdfast.Sessions;
using Holdfast.Storage;

namespace Holdfast.Server.Metrics;

/// <summary>
/// Sessions by kind and status, read from the store at scrape time (<see cref="IStoreAdministration.CountSessionsAsync"/>,
/// a gauge per status). Chunks persisted come from the core's <c>holdfast.generation.chunks.committed</c> counter
/// instead of a count over the log, which would grow with every output ever stored.
/// </summary>
internal sealed class SessionCounts(IStoreAdministration store)
{
    public async Task AppendAsync(StringBuilder text, CancellationToken cancellationToken)
    {
        var rows = await store.CountSessionsAsync(cancellationToken);
        text.Append("# HELP holdfast_sessions Sessions by kind and status.\n# TYPE holdfast_sessions gauge\n");
        foreach (var row in rows)
        {
            text.Append(CultureInfo.InvariantCulture, $"holdfast_sessions{{kind=\"{row.Kind.ToWire()}\",status=\"{row.Status}\"}} {row.Count}\n");
        }
    }
}
