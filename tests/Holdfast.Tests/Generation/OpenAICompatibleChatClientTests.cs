using System.Diagnostics;
using Holdfast.Generation;
using Holdfast.Generation.Backends;
using Holdfast.TestHelpers;
using Holdfast.TestHelpers.OpenAi;
using Microsoft.Extensions.AI;
using Xunit.Abstractions;

namespace Holdfast.Tests.Generation;

public sealed class OpenAICompatibleChatClientTests(ITestOutputHelper output)
{
    private static readonly ChatMessage[] Hello = [new ChatMessage(ChatRole.User, "hello there")];

    private static async Task<List<string>> DrainAsync(IChatClient client, CancellationToken cancellationToken = default)
    {
        var texts = new List<string>();
        await foreach (var update in client.GetStreamingResponseAsync(Hello, new ChatOptions { ModelId = "m", Seed = 1 }, cancellationToken))
        {
            if (!string.IsNullOrEmpty(update.Text))
            {
                texts.Add(update.Text);
            }
        }

        return texts;
    }

    [Fact(Timeout = 30_000)]
    public async Task GetStreamingResponseAsync_Stall_ThrowsAfterReadTimeoutWithTokensKept()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { Fault = EmulatorFault.Stall, FaultAfterTokens = 4 });
        using var client = new OpenAICompatibleChatClient("emu", new GenerationBackendOptions { BaseUrl = emulator.BaseUrl, ReadTimeout = TimeSpan.FromSeconds(2), MaxRetries = 0 });
        var texts = new List<string>();
        var watch = Stopwatch.StartNew();

        var error = await Should.ThrowAsync<GenerationBackendException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync(Hello, new ChatOptions { ModelId = "m", Seed = 1 }))
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
        error.Message.ShouldContain("Backends:emu:ReadTimeout");
    }

    [Fact(Timeout = 30_000)]
    public async Task GetStreamingResponseAsync_ConnectStalls_ThrowsConnectTimeoutNamingBaseUrl()
    {
        using var stalled = await StalledConnectEndpoint.StartAsync();
        using var client = new OpenAICompatibleChatClient("emu", new GenerationBackendOptions
        {
            BaseUrl = stalled.BaseUrl,
            ConnectTimeout = TimeSpan.FromMilliseconds(500),
            ReadTimeout = TimeSpan.FromSeconds(20),
            MaxRetries = 0,
        });
        var watch = Stopwatch.StartNew();

        var error = await Should.ThrowAsync<GenerationBackendException>(() => DrainAsync(client));

        output.WriteLine($"{watch.ElapsedMilliseconds} ms: {error.Message}");
        error.Message.ShouldContain("Backends:emu:ConnectTimeout");
        error.Message.ShouldContain("Backends:emu:BaseUrl");
        error.Message.ShouldContain("no connection within 0.5 s");
        error.Message.ShouldNotContain("ReadTimeout");
        watch.Elapsed.ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(450));
        watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10), "the connect timeout, not the read timeout, ended it");
    }

    [Fact(Timeout = 30_000)]
    public async Task GetStreamingResponseAsync_ConnectSlowerThanReadTimeoutButWithinConnectTimeout_HeaderClockStartsAfterConnect()
    {
        // A read timeout shorter than the connect timeout: a stalled connect is still a connect timeout, not a read timeout.
        using var stalled = await StalledConnectEndpoint.StartAsync();
        using var client = new OpenAICompatibleChatClient("emu", new GenerationBackendOptions
        {
            BaseUrl = stalled.BaseUrl,
            ConnectTimeout = TimeSpan.FromMilliseconds(800),
            ReadTimeout = TimeSpan.FromMilliseconds(200),
            MaxRetries = 0,
        });

        var error = await Should.ThrowAsync<GenerationBackendException>(() => DrainAsync(client));

        error.Message.ShouldContain("Backends:emu:ConnectTimeout");
        error.Message.ShouldNotContain("ReadTimeout");
    }

    [Fact(Timeout = 30_000)]
    public async Task GetStreamingResponseAsync_NoResponseHeaders_ThrowsReadTimeoutNotConnectTimeout()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { FirstTokenDelay = TimeSpan.FromSeconds(20) });
        using var client = new OpenAICompatibleChatClient("emu", new GenerationBackendOptions
        {
            BaseUrl = emulator.BaseUrl,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            ReadTimeout = TimeSpan.FromMilliseconds(400),
            MaxRetries = 0,
        });

        var error = await Should.ThrowAsync<GenerationBackendException>(() => DrainAsync(client));
        var request = emulator.Requests.ShouldHaveSingleItem();
        await request.Ended.WaitAsync(TimeSpan.FromSeconds(5));

        output.WriteLine(error.Message);
        error.Message.ShouldContain("no response headers within 0.4 s");
        error.Message.ShouldContain("Backends:emu:ReadTimeout");
        error.Message.ShouldNotContain("ConnectTimeout");
        request.ClientDisconnected.ShouldBeTrue("the request is closed when the read timeout gives up");
    }

    [Fact(Timeout = 30_000)]
    public async Task GetStreamingResponseAsync_CancelledMidStream_ThrowsOperationCanceledNotStreamCut()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { TokenDelay = TimeSpan.FromMilliseconds(5), MaxTokens = 2000 });
        using var client = new OpenAICompatibleChatClient("emu", new GenerationBackendOptions { BaseUrl = emulator.BaseUrl, MaxRetries = 0 });

        for (var round = 0; round < 10; round++)
        {
            using var cancel = new CancellationTokenSource();
            var seen = 0;
            var error = await Should.ThrowAsync<OperationCanceledException>(async () =>
            {
                await foreach (var update in client.GetStreamingResponseAsync(Hello, new ChatOptions { ModelId = "m", Seed = round }, cancel.Token))
                {
                    if (++seen == 3 + round)
                    {
                        await cancel.CancelAsync();
                    }
                }
            });

            error.CancellationToken.ShouldBe(cancel.Token, $"round {round}");
        }

        await Poll.UntilAsync(() => Task.FromResult(emulator.Requests.All(r => r.EndedTimestamp != 0)), "every request closed");
        emulator.Requests.Count.ShouldBe(10);
        emulator.Requests.ShouldAllBe(r => r.ClientDisconnected);
    }
}
