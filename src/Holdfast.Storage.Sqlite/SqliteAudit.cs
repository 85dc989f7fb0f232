using Holdfast.Audit;
using Holdfast.Sessions;
using Microsoft.Data.Sqlite;

namespace Holdfast.Storage.Sqlite;

/// <summary>Appends audit events inside the caller's write transaction, so a change and its event commit together.</summary>
internal static class SqliteAudit
{
    public static async Task<long> AppendAsync(
        SqliteConnection connection,
        SqliteTransaction transaction,
        SessionKind kind,
        string sessionId,
        Actor actor,
        string action,
        string? fromState,
        string? toState,
        DateTimeOffset at,
        string? detail = null,
        CancellationToken cancellationToken = default)
    {
        await using var command = SqliteDatabase.Command(connection, transaction, """
            INSERT INTO session_events (session_kind, session_id, seq, occurred_at, actor, action, from_state, to_state, detail)
            VALUES ($kind, $id,
                    COALESCE((SELECT MAX(seq) FROM session_events WHERE session_kind = $kind AND session_id = $id), 0) + 1,
                    $at, $actor, $action, $from, $to, $detail)
            RETURNING seq
            """);
        command.Parameters.AddWithValue("$kind", kind.ToWire());
        command.Parameters.AddWithValue("$id", sessionId);
        command.Parameters.AddWithValue("$at", SqliteTime.Format(at));
        command.Parameters.AddWithValue("$actor", actor.Name);
        command.Parameters.AddWithValue("$action", action);
        command.Parameters.AddWithValue("$from", (object?)fromState ?? DBNull.Value);
        command.Parameters.AddWithValue("$to", (object?)toState ?? DBNull.Value);
        var combined = AuditActions.CombineDetail(detail, actor.Reason);
        command.Parameters.AddWithValue("$detail", (object?)combined ?? DBNull.Value);
        var seq = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
        await SqliteWebhookStore.EnqueueAsync(connection, transaction, kind, sessionId, action, fromState, toState, at, combined, cancellationToken);
        return seq;
    }
}
