namespace Holdfast.Tests.Storage;

/// <summary>
/// Tests that load the machine (child processes killed in a loop, hundreds of durable writes at once) run alone,
/// after the parallel ones, so they neither starve nor are starved by timing-sensitive tests elsewhere.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ResourceHeavyCollection
{
    public const string Name = "Resource-heavy (runs alone)";
}
