using Holdfast.Audit;
using Holdfast.Sessions;
using Npgsql;
using NpgsqlTypes;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// Appends audit events inside the caller's transaction, so a change and its event commit together. The caller holds
/// the session's row lock (or inserts the row), so the per-session <c>seq</c> (previous max + 1) cannot race.
/// </summary>
internal static class PostgresAudit
{
    private const string InsertSql = """
        INSERT INTO session_events (session_kind, session_id, seq, occurred_at, actor, action, from_state, to_state, detail)
        VALUES (@kind, @id,
                COALESCE((SELECT max(seq) FROM session_events WHERE session_kind = @kind AND session_id = @id), 0) + 1,
                @at, @actor, @action, @from, @to, @detail)
        """;

    public static async Task AppendAsync(
        NpgsqlConnection connection,
        NpgsqlTransaction transaction,
        SessionKind kind,
        string sessionId,
        Actor actor,
        string action,
        string? fromState,
        string? toState,
        DateTimeOffset at,
        string? detail,
        CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(InsertSql, connection, transaction);
        command.Parameters.Add(Pg.Text("kind", kind.ToWire()));
        command.Parameters.Add(Pg.Text("id", sessionId));
        command.Parameters.Add(Pg.Time("at", at));
        command.Parameters.Add(Pg.Text("actor", actor.Name));
        command.Parameters.Add(Pg.Text("action", action));
        command.Parameters.Add(Pg.Text("from", fromState));
        command.Parameters.Add(Pg.Text("to", toState));
        var combined = AuditActions.CombineDetail(detail, actor.Reason);
        command.Parameters.Add(Pg.Text("detail", combined));
        await command.ExecuteNonQueryAsync(cancellationToken);
        await PostgresWebhookStore.EnqueueAsync(connection, transaction, kind, sessionId, action, fromState, toState, at, combined, cancellationToken);
    }
}

/// <summary>Typed Npgsql parameters (a null value still has a type, so PostgreSQL never has to guess one).</summary>
internal static class Pg
{
    public static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

    public static NpgsqlParameter Jsonb(string name, string? value) => new(name, NpgsqlDbType.Jsonb) { Value = (object?)value ?? DBNull.Value };

    public static NpgsqlParameter Bigint(string name, long? value) => new(name, NpgsqlDbType.Bigint) { Value = (object?)value ?? DBNull.Value };

    public static NpgsqlParameter Integer(string name, int? value) => new(name, NpgsqlDbType.Integer) { Value = (object?)value ?? DBNull.Value };

    public static NpgsqlParameter Bool(string name, bool value) => new(name, NpgsqlDbType.Boolean) { Value = value };

    public static NpgsqlParameter Bytea(string name, byte[]? value) => new(name, NpgsqlDbType.Bytea) { Value = (object?)value ?? DBNull.Value };

    /// <summary>A timestamptz; the value is stored in UTC (PostgreSQL keeps microseconds).</summary>
    public static NpgsqlParameter Time(string name, DateTimeOffset? value) =>
        new(name, NpgsqlDbType.TimestampTz) { Value = value is { } v ? v.ToUniversalTime() : DBNull.Value };

    public static NpgsqlParameter TextArray(string name, string[] values) => new(name, NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = values };

    public static NpgsqlParameter BigintArray(string name, long[] values) => new(name, NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = values };

    /// <summary>A nullable string column.</summary>
    public static string? NullableString(this NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    /// <summary>A nullable bigint column.</summary>
    public static long? NullableInt64(this NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetInt64(ordinal);

    /// <summary>A timestamptz column as a UTC <see cref="DateTimeOffset"/>.</summary>
    public static DateTimeOffset Time(this NpgsqlDataReader reader, int ordinal) => new(reader.GetDateTime(ordinal), TimeSpan.Zero);

    /// <summary>A nullable timestamptz column.</summary>
    public static DateTimeOffset? NullableTime(this NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.Time(ordinal);
}
