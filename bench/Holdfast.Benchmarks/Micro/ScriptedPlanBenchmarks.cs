using BenchmarkDotNet.Attributes;
using Holdfast.Generation.Backends;
using Microsoft.Extensions.AI;

namespace Holdfast.Benchmarks.Micro;

/// <summary>What a resume of the scripted backend costs: skipping the prefix and planning the rest.</summary>
[MemoryDiagnoser]
public class ScriptedPlanBenchmarks
{
    private readonly List<ChatMessage> _conversation = [new(ChatRole.User, "Tell me about the holdfast of a kelp forest.")];
    private string _prefix = string.Empty;

    [Params(200, 2000)]
    public int Tokens { get; set; }

    [GlobalSetup]
    public void Setup() => _prefix = string.Concat(ScriptedChatClient.Plan(_conversation, string.Empty, 7, null, Tokens / 2, null).Chunks);

    [Benchmark]
    public int FreshRun() => ScriptedChatClient.Plan(_conversation, string.Empty, 7, null, Tokens, null).Chunks.Count;

    [Benchmark]
    public int ResumeFromHalfway() => ScriptedChatClient.Plan(_conversation, _prefix, 7, null, Tokens, null).Chunks.Count;
}
