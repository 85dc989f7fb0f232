using Holdfast.TestHelpers;

namespace Holdfast.Storage.Postgres.Tests;

/// <summary>
/// The standalone Supabase script must stay the same as the migration Holdfast applies. (Running it through psql: <see cref="PostgresSchemaScriptTests"/>.)
/// </summary>
public sealed class PostgresScriptTests
{
    [Fact(Timeout = 30_000)]
    public async Task CreateBotSessionsScript_SameTableAndIndexesAsMigration0001()
    {
        var script = await File.ReadAllTextAsync(RepositoryRoot.File("migrations", "postgres", "create_bot_sessions.sql"));
        var migration = PostgresMigrations.Load().Single(m => m.Version == 1).Sql;

        var scriptTable = BotSessionsDdl(script);

        scriptTable.ShouldBe(BotSessionsDdl(migration));
        scriptTable.ShouldContain("session_id        text PRIMARY KEY");
        scriptTable.ShouldContain("status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive'))");
        script.ShouldContain("ALTER TABLE bot_sessions ENABLE ROW LEVEL SECURITY;");
    }

    [Fact]
    public void CreateBotSessionsScript_NotEmbeddedAsMigration()
    {
        PostgresMigrations.Load().ShouldAllBe(m => m.Name != "bot_sessions" && !m.Id.StartsWith("create", StringComparison.Ordinal));
    }

    private static string BotSessionsDdl(string sql)
    {
        var normalized = sql.Replace("\r\n", "\n", StringComparison.Ordinal);
        var start = normalized.IndexOf("CREATE TABLE IF NOT EXISTS bot_sessions", StringComparison.Ordinal);
        var end = normalized.IndexOf(';', normalized.IndexOf("ix_bot_sessions_owner", StringComparison.Ordinal));
        start.ShouldBeGreaterThanOrEqualTo(0);
        return normalized[start..(end + 1)];
    }
}
