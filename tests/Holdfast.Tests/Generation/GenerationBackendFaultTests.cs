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
        // 2 s: short enough to keep the test quick, long enough that the healthy resumed stream never trips it on a busy machine.
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl, readTimeout: "00:00:02"));
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

    [Fact(Timeout = 60_000)]
    public async Task Run_StallBeforeResponseHeaders_FailsWithReadTimeoutKeepingOutputAndResumesExactly()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { TokenDelay = TimeSpan.FromMilliseconds(15), MaxTokens = 200 });
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl, readTimeout: "00:00:02"));
        var request = Request();
        var (session, _) = await host.Sessions.CreateAsync(request);
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 5, "some output");
        var paused = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));

        // The resumed request reaches a server that accepts it and then says nothing, not even its headers.
        emulator.Behavior = new EmulatorBehavior { FirstTokenDelay = TimeSpan.FromSeconds(30), MaxTokens = 200 };
        await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);
        var failed = await host.WaitForStatusAsync(session.Id, GenerationStatus.Failed);
        var silent = emulator.Requests[^1];
        await silent.Ended.WaitAsync(TimeSpan.FromSeconds(5));
        emulator.Behavior = new EmulatorBehavior { TokenDelay = TimeSpan.Zero, MaxTokens = 200 };
        await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        paused.Status.ShouldBe(GenerationStatus.Paused);
        failed.Error!.ShouldContain("no response headers within 2 s");
        failed.Error!.ShouldContain("Backends:emu:ReadTimeout");
        failed.Error!.ShouldNotContain("ConnectTimeout");
        failed.Output.ShouldBe(paused.Output, "the partial output is kept");
        silent.TokensSent.ShouldBe(0);
        silent.ClientDisconnected.ShouldBeTrue("the silent request is closed");
        done.Output.ShouldBe(Expected(request, 200));
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_ConnectStalls_FailsWithConnectTimeoutNamingBaseUrlAndIsResumable()
    {
        using var stalled = await StalledConnectEndpoint.StartAsync();
        var settings = Backend(stalled.BaseUrl, readTimeout: "00:00:10");
        settings["Backends:emu:ConnectTimeout"] = "00:00:00.300";
        await using var host = await GenerationTestHost.StartAsync(settings);

        var (session, _) = await host.Sessions.CreateAsync(Request());
        var failed = await host.WaitForStatusAsync(session.Id, GenerationStatus.Failed);
        var resumed = await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);

        failed.Error!.ShouldContain("no connection within 0.3 s (Backends:emu:ConnectTimeout)");
        failed.Error!.ShouldContain("Backends:emu:BaseUrl");
        failed.Error!.ShouldNotContain("ReadTimeout");
        resumed.Status.ShouldBe(GenerationStatus.Queued);
    }

    [Theory(Timeout = 60_000)]
    [InlineData(0)]
    [InlineData(5)]
    public async Task CancelAsync_RequestInFlightBeforeFirstToken_CancelledUpstreamClosedWithin100Ms(int delayMs)
    {
        // The emulator holds the answer (no headers, no token) so the request is surely in flight when the cancel comes.
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { FirstTokenDelay = TimeSpan.FromSeconds(2), MaxTokens = 400 });
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl));
        var request = Request();
        var (session, _) = await host.Sessions.CreateAsync(request);
        var upstream = await emulator.WaitForRequestAsync(0);
        if (delayMs > 0)
        {
            var started = Stopwatch.StartNew();
            await Poll.UntilAsync(() => Task.FromResult(started.ElapsedMilliseconds >= delayMs), $"{delayMs} ms", interval: TimeSpan.FromMilliseconds(1));
        }

        var cancelAt = Stopwatch.GetTimestamp();
        var cancelled = await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        await upstream.Ended.WaitAsync(TimeSpan.FromSeconds(5));
        var again = await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice);
        var log = await host.Sessions.ReadLogAsync(session.Id, null, 0, 5000);

        cancelled.Status.ShouldBe(GenerationStatus.Cancelled);
        (again.Version, again.Status, again.Output, again.UpdatedAt).ShouldBe((cancelled.Version, cancelled.Status, cancelled.Output, cancelled.UpdatedAt));
        cancelled.Output.ShouldBeEmpty("nothing was answered yet");
        string.Concat(log.Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(cancelled.Output);
        log[^1].StatusChange!.Status.ShouldBe(GenerationStatus.Cancelled);
        emulator.Requests.Count.ShouldBe(1);
        upstream.TokensSent.ShouldBe(0);
        upstream.ClientDisconnected.ShouldBeTrue();
        Stopwatch.GetElapsedTime(cancelAt, upstream.EndedTimestamp).ShouldBeLessThan(TimeSpan.FromMilliseconds(100), "the upstream request is closed at once");
    }

    [Fact(Timeout = 60_000)]
    public async Task CancelAsync_MidStream_CancelledPartialPersistedUpstreamClosedWithin100Ms()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { TokenDelay = TimeSpan.FromMilliseconds(20), MaxTokens = 400 });
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl));
        var request = Request();
        var (session, _) = await host.Sessions.CreateAsync(request);
        var upstream = await emulator.WaitForRequestAsync(0);
        await Poll.UntilAsync(() => Task.FromResult(upstream.TokensSent >= 10), "ten tokens streamed", interval: TimeSpan.FromMilliseconds(2));

        var cancelAt = Stopwatch.GetTimestamp();
        var cancelled = await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        await upstream.Ended.WaitAsync(TimeSpan.FromSeconds(5));
        var again = await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice);
        var log = await host.Sessions.ReadLogAsync(session.Id, null, 0, 5000);

        cancelled.Status.ShouldBe(GenerationStatus.Cancelled);
        (again.Version, again.Status, again.Output, again.UpdatedAt).ShouldBe((cancelled.Version, cancelled.Status, cancelled.Output, cancelled.UpdatedAt));
        cancelled.Output.ShouldNotBeEmpty();
        Expected(request, 400).ShouldStartWith(cancelled.Output);
        string.Concat(log.Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(cancelled.Output);
        emulator.Requests.Count.ShouldBe(1);
        upstream.ClientDisconnected.ShouldBeTrue();
        Stopwatch.GetElapsedTime(cancelAt, upstream.EndedTimestamp).ShouldBeLessThan(TimeSpan.FromMilliseconds(100), "the upstream request is closed at once");
    }

    [Fact(Timeout = 60_000)]
    public async Task CancelAsync_WhileQueued_CancelledAndNeverSentUpstream()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { FirstTokenDelay = TimeSpan.FromMilliseconds(500), TokenDelay = TimeSpan.Zero, MaxTokens = 20 });
        var settings = Backend(emulator.BaseUrl);
        settings["Backends:emu:MaxConcurrency"] = "1";
        await using var host = await GenerationTestHost.StartAsync(settings);
        var (first, _) = await host.Sessions.CreateAsync(Request(seed: 1));
        await emulator.WaitForRequestAsync(0);
        var (queued, _) = await host.Sessions.CreateAsync(Request(seed: 2));

        var cancelled = await host.Sessions.CancelAsync(queued.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        var again = await host.Sessions.CancelAsync(queued.Id, GenerationTestHost.Alice);
        await host.WaitForStatusAsync(first.Id, GenerationStatus.Completed);
        var afterSlotFreed = await host.Sessions.GetAsync(queued.Id, null);

        queued.Status.ShouldBe(GenerationStatus.Queued);
        cancelled.Status.ShouldBe(GenerationStatus.Cancelled);
        cancelled.Attempts.ShouldBe(0);
        cancelled.Output.ShouldBeEmpty();
        (again.Version, again.UpdatedAt).ShouldBe((cancelled.Version, cancelled.UpdatedAt));
        (afterSlotFreed.Status, afterSlotFreed.Version).ShouldBe((GenerationStatus.Cancelled, cancelled.Version));
        emulator.Requests.Count.ShouldBe(1, "the cancelled session never reached the backend");
    }

    [Fact(Timeout = 120_000)]
    public async Task PauseAsync_MidStreamManyTimes_AlwaysPausedNeverFailedAndEndsWithExactText()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { TokenDelay = TimeSpan.FromMilliseconds(5), MaxTokens = 400 });
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl));
        var request = Request(seed: 23);
        var (session, _) = await host.Sessions.CreateAsync(request);

        for (var round = 0; round < 20; round++)
        {
            var upstream = await emulator.WaitForRequestAsync(round);
            var target = 2 + (round % 5);
            await Poll.UntilAsync(() => Task.FromResult(upstream.TokensSent >= target), $"round {round}: {target} tokens", interval: TimeSpan.FromMilliseconds(1));

            var paused = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
            await upstream.Ended.WaitAsync(TimeSpan.FromSeconds(5));

            paused.Status.ShouldBe(GenerationStatus.Paused, $"round {round}: {paused.Error}");
            paused.Error.ShouldBeNull();
            upstream.ClientDisconnected.ShouldBeTrue($"round {round}");
            await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);
        }

        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        done.Output.ShouldBe(Expected(request, 400));
        done.Attempts.ShouldBe(21);
        host.Logs.WarningsAndErrors.ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task PauseAsync_MidStream_ClosesUpstreamWithin100MsAndPersistsPartialFirst()
    {
        await using var emulator = await OpenAiEmulator.StartAsync(new EmulatorBehavior { TokenDelay = TimeSpan.FromMilliseconds(20), MaxTokens = 400 });
        await using var host = await GenerationTestHost.StartAsync(Backend(emulator.BaseUrl));
        var request = Request(seed: 24);
        var (session, _) = await host.Sessions.CreateAsync(request);
        var upstream = await emulator.WaitForRequestAsync(0);
        await Poll.UntilAsync(() => Task.FromResult(upstream.TokensSent >= 8), "eight tokens streamed", interval: TimeSpan.FromMilliseconds(2));

        var pauseAt = Stopwatch.GetTimestamp();
        var paused = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        await upstream.Ended.WaitAsync(TimeSpan.FromSeconds(5));
        var log = await host.Sessions.ReadLogAsync(session.Id, null, 0, 5000);

        paused.Status.ShouldBe(GenerationStatus.Paused);
        upstream.ClientDisconnected.ShouldBeTrue();
        Stopwatch.GetElapsedTime(pauseAt, upstream.EndedTimestamp).ShouldBeLessThan(TimeSpan.FromMilliseconds(100), "the upstream HTTP stream is closed at once");
        paused.Output.ShouldNotBeEmpty();
        Expected(request, 400).ShouldStartWith(paused.Output);
        string.Concat(log.Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(paused.Output);
        log[^1].StatusChange!.Status.ShouldBe(GenerationStatus.Paused, "the partial output is committed before the paused status");
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
