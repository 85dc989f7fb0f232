namespace Holdfast.Server.Tests;

/// <summary>
/// The crash loop and the soak each load a real server for tens of seconds and measure it: they run alone, after the
/// parallel tests, so they neither disturb timing-sensitive tests (ControlUnderLoadTests) nor are disturbed by them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FaultChecksCollection
{
    public const string Name = "fault checks (run alone)";
}
