using System.Diagnostics;
using Holdfast.Generation;
using Holdfast.TestHelpers;
using Holdfast.TestHelpers.OpenAi;

namespace Holdfast.Tests.Generation;

/// <summary>The OpenAI-compatible client against the emulator over real HTTP: faults, retry, continuation, cancel.</summary>
[Collection(Holdfast.Tests.Storage.ResourceHeavyCollection.Name)]
public sealed class GenerationBackendFaultTests
{
    private static Dictionary<string, string?> Backend(string baseUrl, string name = "emu", string readTimeout = "00:00:05", int retries = 0) => new()
    {
        [$"Backends:{name}:BaseUrl"] = baseUrl,
        [$"Backends:{name}:ReadTimeout"] = readTimeout,
        [$"Backends:{name}:ConnectTimeout"] = "00:00:02",
        [$"Backends:{name}:MaxRetries"] = retries.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [$"Backends:{name}:RetryDelay"] = "00:00:00.020",
        ["Generation:DefaultBackend"] = name,
    };

    private static CreateGenerationRequest Request(long seed = 21) => new()
    {
        Owner = "alice",
        Model = "emulated-model",
        Input = [new GenerationMessage("system", "Be brief."), new GenerationMessage("user", "Describe the harbour at night")],
        Parameters = new GenerationParameters { Seed = seed },
    };

    private static string Expected(CreateGenerationRequest request, int tokens = 40)
    {
        var conversation = request.Input.Select(m => new Microsoft.Extensions.AI.ChatMessage(new Microsoft.Extensions.AI.ChatRole(m.Role), m.Content)).ToList();
        return string.Concat(Holdfast.Generation.Backends.ScriptedChatClient.Plan(conversation, string.Empty, request.Parameters?.Seed, null, tokens, null).Chunks);
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_DefaultBackendRefused_FailsWithWhatToConfigureAndIsResumable()
    {
        await using var host = await GenerationTestHost.StartAsync(Backend(OpenAiEmulator.RefusedBaseUrl(), name: "default", retries: 1));

        var (session, _) = await host.Sessions.CreateAsync(Request());
        var failed = await host.WaitForStatusAsync(session.Id, GenerationStatus.Failed);
        var resumed = await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);

        failed.Backend.ShouldBe("default");
        failed.Error.ShouldNotBeNull();
        failed.Error.ShouldContain("Backends:Default:BaseUrl");
        failed.Error.ShouldContain("resumed");
        resumed.Status.ShouldBe(GenerationStatus.Queued);
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_Http500_FailsAfterRetryThenResumesToExactText()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { Fault = EmulatorFault.Status500 });
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl, retries: 1));
        var request = Request();

        var (session, _) = await host.Sessions.CreateAsync(request);
        var failed = await host.WaitForStatusAsync(session.Id, GenerationStatus.Failed);
        emulator.Behavior = new EmulatorBehavior();
        await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        failed.Error!.ShouldContain("HTTP 500");
        emulator.Requests.Count.ShouldBe(3, "one retry before the first token, then the resumed run");
        done.Output.ShouldBe(Expected(request));
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_StreamCutMidway_FailsKeepingPartialOutputThenResumesExactly()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { Fault = EmulatorFault.CutStream, FaultAfterTokens = 7 });
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl, retries: 2));
        var request = Request();

        var (session, _) = await host.Sessions.CreateAsync(request);
        var failed = await host.WaitForStatusAsync(session.Id, GenerationStatus.Failed);
        emulator.Behavior = new EmulatorBehavior();
        await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);
        var resumedRequest = emulator.Requests[^1];

        failed.Error!.ShouldContain("ended after 7 tokens");
        failed.Usage.OutputTokens.ShouldBe(7);
        Expected(request).ShouldStartWith(failed.Output);
        failed.Output.Length.ShouldBeGreaterThan(0);
        emulator.Requests.Count.ShouldBe(2, "no retry after the first token");
        resumedRequest.Messages[^1].ShouldBe(("assistant", failed.Output));
        resumedRequest.Json.GetProperty("continue_final_message").GetBoolean().ShouldBeTrue();
        resumedRequest.Json.GetProperty("add_generation_prompt").GetBoolean().ShouldBeFalse();
        done.Output.ShouldBe(Expected(request));
        done.Continuation.ShouldBe("prefill");
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_StallPastReadTimeout_FailsKeepingPartialOutputAndClosesUpstream()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { Fault = EmulatorFault.Stall, FaultAfterTokens = 4 });
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl, readTimeout: "00:00:00.400"));
        var request = Request();

        var (session, _) = await host.Sessions.CreateAsync(request);
        var failed = await host.WaitForStatusAsync(session.Id, GenerationStatus.Failed);
        var stalled = emulator.Requests[0];
        await stalled.Ended.WaitAsync(TimeSpan.FromSeconds(5));
        emulator.Behavior = new EmulatorBehavior();
        await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        failed.Error!.ShouldContain("ReadTimeout");
        failed.Usage.OutputTokens.ShouldBe(4);
        stalled.ClientDisconnected.ShouldBeTrue();
        done.Output.ShouldBe(Expected(request));
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_FailuresBeforeFirstToken_RetriedWithBackoff()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { FailFirstRequests = 2 });
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl, retries: 2));
        var request = Request();

        var (session, _) = await host.Sessions.CreateAsync(request);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        emulator.Requests.Count.ShouldBe(3);
        done.Attempts.ShouldBe(1);
        done.Output.ShouldBe(Expected(request));
    }

    [Theory(Timeout = 60_000)]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(-1)]
    public async Task CancelAsync_AtTimeOrMidStream_CancelledPartialPersistedUpstreamClosedFast(int delayMs)
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { TokenDelay = TimeSpan.FromMilliseconds(20), MaxTokens = 400 });
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl));
        var request = Request();

        var (session, _) = await host.Sessions.CreateAsync(request);
        if (delayMs < 0)
        {
            var first = await emulator.WaitForRequestAsync(0);
            await Poll.UntilAsync(() => Task.FromResult(first.TokensSent >= 10), "ten tokens streamed", interval: TimeSpan.FromMilliseconds(2));
        }
        else if (delayMs > 0)
        {
            var started = Stopwatch.StartNew();
            await Poll.UntilAsync(() => Task.FromResult(started.ElapsedMilliseconds >= delayMs), $"{delayMs} ms", interval: TimeSpan.FromMilliseconds(1));
        }

        var cancelAt = Stopwatch.GetTimestamp();
        var cancelled = await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        var again = await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice);
        var log = await host.Sessions.ReadLogAsync(session.Id, null, 0, 5000);

        cancelled.Status.ShouldBe(GenerationStatus.Cancelled);
        (again.Version, again.Status, again.Output).ShouldBe((cancelled.Version, cancelled.Status, cancelled.Output));
        string.Concat(log.Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(cancelled.Output);
        Expected(request, 400).ShouldStartWith(cancelled.Output);
        if (delayMs < 0)
        {
            cancelled.Output.ShouldNotBeEmpty();
        }

        foreach (var upstream in emulator.Requests)
        {
            await upstream.Ended.WaitAsync(TimeSpan.FromSeconds(5));
            upstream.ClientDisconnected.ShouldBeTrue();
            var closedAfter = Stopwatch.GetElapsedTime(cancelAt, upstream.EndedTimestamp);
            closedAfter.ShouldBeLessThan(TimeSpan.FromMilliseconds(100), "the upstream request is closed at once");
        }
    }
}

public sealed class GenerationPrefillFallbackTests
{
    [Fact(Timeout = 60_000)]
    public async Task ResumeAsync_BackendWithoutPrefill_UsesDeclaredFallbackAndRecordsIt()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { TokenDelay = TimeSpan.FromMilliseconds(15), MaxTokens = 200 });
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Backends:plain:BaseUrl"] = emulator.BaseUrl,
            ["Backends:plain:Prefill"] = "None",
        });
        var (session, _) = await host.Sessions.CreateAsync(new CreateGenerationRequest
        {
            Owner = "alice",
            Model = "m",
            Backend = "plain",
            Input = [new GenerationMessage("user", "Write a long story")],
        });
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 3, "some output");

        var paused = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);
        var resumedRequest = await emulator.WaitForRequestAsync(1);
        var resumed = await host.Sessions.GetAsync(session.Id, null);
        await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));

        resumed.Continuation.ShouldBe("fallback:instruction");
        resumedRequest.Messages[^2].ShouldBe(("assistant", paused.Output));
        resumedRequest.Messages[^1].Role.ShouldBe("user");
        resumedRequest.Messages[^1].Content.ShouldContain("Continue");
        resumedRequest.Json.TryGetProperty("continue_final_message", out _).ShouldBeFalse();
    }
}
