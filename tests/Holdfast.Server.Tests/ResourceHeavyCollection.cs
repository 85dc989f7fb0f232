namespace Holdfast.Server.Tests;

/// <summary>
/// Tests that load the machine (a thousand SSE followers in this process) run alone, after the parallel ones, so they
/// neither starve nor are starved by the other servers of this test process (their PostgreSQL connects, their polls).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ResourceHeavyCollection
{
    public const string Name = "Resource-heavy (runs alone)";
}
