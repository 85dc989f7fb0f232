using System.Diagnostics;
using Holdfast.Generation;
using Holdfast.Generation.Backends;
using Holdfast.TestHelpers.OpenAi;
using Microsoft.Extensions.AI;
using Xunit.Abstractions;

namespace Holdfast.Tests.Generation;

public sealed class OpenAICompatibleChatClientTests(ITestOutputHelper output)
{
    [Fact(Timeout = 30_000)]
    public async Task GetStreamingResponseAsync_Stall_ThrowsAfterReadTimeoutWithTokensKept()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { Fault = EmulatorFault.Stall, FaultAfterTokens = 4 });
        using var client = new OpenAICompatibleChatClient("emu", new GenerationBackendOptions { BaseUrl = emulator.BaseUrl, ReadTimeout = TimeSpan.FromSeconds(2), MaxRetries = 0 });
        var texts = new List<string>();
        var watch = Stopwatch.StartNew();

        var error = await Should.ThrowAsync<GenerationBackendException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "hello there")], new ChatOptions { ModelId = "m", Seed = 1 }))
            {
                output.WriteLine($"{watch.ElapsedMilliseconds} ms: '{update.Text}'");
                if (!string.IsNullOrEmpty(update.Text))
                {
                    texts.Add(update.Text);
                }
            }
        });

        output.WriteLine($"{watch.ElapsedMilliseconds} ms: {error.Message}");
        texts.Count.ShouldBe(4);
        error.Message.ShouldContain("after 4 tokens");
    }
}
