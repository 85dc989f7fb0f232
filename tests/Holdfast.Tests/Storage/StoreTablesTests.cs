using Holdfast.Storage;

namespace Holdfast.Tests.Storage;

/// <summary>The order a store move copies tables in (StoreTables.ParentsFirst), from the schema's foreign keys.</summary>
public sealed class StoreTablesTests
{
    [Fact]
    public void ParentsFirst_HoldfastSchema_ParentsBeforeChildrenTiesByNameLedgerLeftOut()
    {
        var schema = new Dictionary<string, IReadOnlyCollection<string>>(StringComparer.Ordinal)
        {
            ["session_events"] = [],
            ["generation_log"] = ["generation_sessions"],
            ["bot_auth_keys"] = ["bot_sessions"],
            ["generation_sessions"] = ["generation_sessions", "users"],
            ["api_keys"] = ["users"],
            ["bot_sessions"] = [],
            ["users"] = [],
            ["schema_migrations"] = [],
        };

        var order = StoreTables.ParentsFirst(schema);

        order.ShouldBe(["bot_sessions", "bot_auth_keys", "session_events", "users", "api_keys", "generation_sessions", "generation_log"]);
    }

    [Fact]
    public void ParentsFirst_ReferenceOutsideTheSchema_Ignored()
    {
        var order = StoreTables.ParentsFirst(new Dictionary<string, IReadOnlyCollection<string>>(StringComparer.Ordinal) { ["b"] = ["elsewhere", "a"], ["a"] = ["schema_migrations"] });

        order.ShouldBe(["a", "b"]);
    }

    [Fact]
    public void ParentsFirst_Cycle_Throws()
    {
        var cycle = new Dictionary<string, IReadOnlyCollection<string>>(StringComparer.Ordinal) { ["a"] = ["b"], ["b"] = ["a"], ["c"] = [] };

        Should.Throw<InvalidOperationException>(() => StoreTables.ParentsFirst(cycle)).Message.ShouldContain("a, b");
    }
}
