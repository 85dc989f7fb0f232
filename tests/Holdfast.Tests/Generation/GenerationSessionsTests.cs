using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Tests.Generation;

public sealed class GenerationSessionsTests
{
    [Fact(Timeout = 30_000)]
    public async Task CreateAsync_ScriptedSession_CompletesWithDeterministicOutput()
    {
        await using var host = await GenerationTestHost.StartAsync();
        var request = GenerationTestHost.ScriptedRequest();

        var (session, created) = await host.Sessions.CreateAsync(request);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        created.ShouldBeTrue();
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
        done.Usage.OutputTokens.ShouldBe(60);
        done.FinishReason.ShouldBe("stop");
        done.Attempts.ShouldBe(1);
    }
}

public sealed class GenerationOptionsTests
{
    [Fact(Timeout = 30_000)]
    public async Task CreateAsync_RequestMaxTokensSmallerThanScriptedMax_WinsWithFinishLength()
    {
        await using var host = await GenerationTestHost.StartAsync();
        var request = GenerationTestHost.ScriptedRequest(maxTokens: 12);

        var (session, _) = await host.Sessions.CreateAsync(request);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        done.Usage.OutputTokens.ShouldBe(12);
        done.FinishReason.ShouldBe("length");
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
    }

    [Fact(Timeout = 30_000)]
    public async Task CreateAsync_RequestMaxTokensLargerThanScriptedMax_ConfiguredMaxWins()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:MaxTokens"] = "25" });
        var request = GenerationTestHost.ScriptedRequest(maxTokens: 100);

        var (session, _) = await host.Sessions.CreateAsync(request);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        done.Usage.OutputTokens.ShouldBe(25);
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request, 25));
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(GenerationTestHost.ScriptedRequest(), 25), "the request's larger max_tokens changes nothing");
    }

    [Fact]
    public void ScriptedBackendOptions_Defaults_FiftyTokensPerSecondAndTwoHundredTokens()
    {
        var defaults = new ScriptedBackendOptions();

        defaults.TokensPerSecond.ShouldBe(50);
        defaults.MaxTokens.ShouldBe(200);
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_NoScriptedSettingsNoMaxTokens_ExactlyTwoHundredTokensAtFiftyPerSecondByDefault()
    {
        // Scripted:MaxTokens unset; only the speed is raised (0 = as fast as possible) so the test is quick.
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:MaxTokens"] = null, ["Scripted:TokensPerSecond"] = null }, startRunner: false);
        var bound = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ScriptedBackendOptions>>().Value;
        await using var fast = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:MaxTokens"] = null, ["Scripted:TokensPerSecond"] = "0" });
        var request = GenerationTestHost.ScriptedRequest();

        var (session, _) = await fast.Sessions.CreateAsync(request);
        var done = await fast.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        bound.TokensPerSecond.ShouldBe(50);
        bound.MaxTokens.ShouldBe(200);
        done.Usage.OutputTokens.ShouldBe(200);
        (await fast.Sessions.ReadLogAsync(session.Id, null, 0, 5000)).Count(e => e.Type == GenerationLogEventType.Chunk).ShouldBe(200);
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request, 200));
    }

    [Fact(Timeout = 30_000)]
    public async Task Run_ScriptedMaxTokensFromEnvironmentVariable_TakesEffect()
    {
        // The real key is Scripted__MaxTokens (what `holdfast serve` reads through the default host builder); a
        // per-test prefix keeps this process-wide variable from reaching the other hosts that tests run in parallel.
        var prefix = $"HOLDFAST_TEST_{Guid.NewGuid():N}_";
        Environment.SetEnvironmentVariable(prefix + "Scripted__MaxTokens", "17");
        try
        {
            await using var host = await GenerationTestHost.StartAsync(
                new Dictionary<string, string?> { ["Scripted:MaxTokens"] = null },
                configuration: c => c.AddEnvironmentVariables(prefix));
            var request = GenerationTestHost.ScriptedRequest();

            var (session, _) = await host.Sessions.CreateAsync(request);
            var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

            done.Usage.OutputTokens.ShouldBe(17);
            done.Output.ShouldBe(GenerationTestHost.ExpectedText(request, 17));
        }
        finally
        {
            Environment.SetEnvironmentVariable(prefix + "Scripted__MaxTokens", null);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task CreateAsync_DefaultBackendScriptedAndOtherModelName_RunsOnScripted()
    {
        // What `holdfast serve --backend scripted` sets: a request for any model (and no backend) runs on scripted.
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Generation:DefaultBackend"] = "scripted" });
        var request = GenerationTestHost.ScriptedRequest() with { Model = "llama3.2" };

        var (session, _) = await host.Sessions.CreateAsync(request);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        session.Backend.ShouldBe("scripted");
        done.Model.ShouldBe("llama3.2");
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
    }

    [Fact(Timeout = 30_000)]
    public async Task CreateAsync_ModelScriptedWithExplicitBackend_ExplicitBackendWins()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Generation:DefaultBackend"] = "default",
            ["Backends:other:Type"] = "scripted",
        });

        var (named, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest() with { Backend = "other" });
        var (unnamed, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest());

        named.Backend.ShouldBe("other");
        unnamed.Backend.ShouldBe("scripted", "model scripted with no backend named runs on scripted whatever the default");
    }

    [Fact(Timeout = 30_000)]
    public async Task CreateAsync_UnknownBackend_InvalidInputNamingTheSetting()
    {
        await using var host = await GenerationTestHost.StartAsync();

        var error = await Should.ThrowAsync<InvalidSessionInputException>(() => host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest() with { Backend = "nope" }));

        error.Field.ShouldBe("backend");
        error.Message.ShouldContain("Backends:nope:BaseUrl");
    }

    [Fact(Timeout = 30_000)]
    public async Task CreateAsync_BadParameters_InvalidInputAndNothingStored()
    {
        await using var host = await GenerationTestHost.StartAsync();

        await Should.ThrowAsync<InvalidSessionInputException>(() => host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest() with { Parameters = new GenerationParameters { Temperature = 5 } }));
        await Should.ThrowAsync<InvalidSessionInputException>(() => host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest() with { Input = [] }));
        await Should.ThrowAsync<InvalidSessionInputException>(() => host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest() with { Input = [new GenerationMessage("robot", "hi")] }));
        var page = await host.Sessions.ListAsync(new GenerationListQuery());

        page.Items.ShouldBeEmpty();
    }

    [Fact]
    public void AddHoldfastGeneration_CalledTwice_RegistersOneRunner()
    {
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();

        Holdfast.Generation.GenerationServiceCollectionExtensions.AddHoldfastGeneration(services);
        Holdfast.Generation.GenerationServiceCollectionExtensions.AddHoldfastGeneration(services);

        services.Count(d => d.ServiceType == typeof(Microsoft.Extensions.Hosting.IHostedService)).ShouldBe(1);
        services.Count(d => d.ServiceType == typeof(GenerationSessions)).ShouldBe(1);
    }

    [Fact(Timeout = 30_000)]
    public async Task ListAsync_Cursor_PagesNewestFirstWithoutOverlap()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Generation:DefaultBackend"] = "scripted" }, startRunner: false);
        for (var i = 0; i < 7; i++)
        {
            await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest($"list {i}"));
        }

        var first = await host.Sessions.ListAsync(new GenerationListQuery { Limit = 4 });
        var second = await host.Sessions.ListAsync(new GenerationListQuery { Limit = 4, Cursor = first.NextCursor });

        first.Items.Count.ShouldBe(4);
        second.Items.Count.ShouldBe(3);
        second.NextCursor.ShouldBeNull();
        first.Items.Concat(second.Items).Select(s => s.Id).ShouldBe(first.Items.Concat(second.Items).Select(s => s.Id).OrderDescending(StringComparer.Ordinal));
        first.Items.Concat(second.Items).Select(s => s.Id).Distinct().Count().ShouldBe(7);
    }

    [Fact(Timeout = 30_000)]
    public async Task DeleteAsync_RunningSession_ConflictThenDeletedAfterCancel()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "20" });
        var (session, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest());
        await host.WaitForStatusAsync(session.Id, GenerationStatus.Running);

        await Should.ThrowAsync<SessionConflictException>(() => host.Sessions.DeleteAsync(session.Id, GenerationTestHost.Alice));
        await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        await host.Sessions.DeleteAsync(session.Id, GenerationTestHost.Alice);

        await Should.ThrowAsync<SessionNotFoundException>(() => host.Sessions.GetAsync(session.Id, null));
    }
}

public sealed class GenerationMisconfiguredBackendTests
{
    [Theory(Timeout = 30_000)]
    [InlineData("Backends:bad:BaseUrl", "ftp://example", "Backends:bad:BaseUrl is 'ftp://example', which is not an http(s) URL")]
    [InlineData("Backends:bad:Type", "grpc", "Backends:bad:Type is 'grpc'")]
    [InlineData("Backends:bad:ReadTimeout", "00:00:00", "Backends:bad:ReadTimeout must be between")]
    [InlineData("Backends:bad:MaxConcurrency", "0", "Backends:bad:MaxConcurrency must be between")]
    [InlineData("Scripted:MaxTokens", "0", "Scripted:MaxTokens must be between 1 and")]
    [InlineData("Scripted:TokensPerSecond", "-5", "Scripted:TokensPerSecond must be 0")]
    [InlineData("Generation:FlushInterval", "00:00:02", "Generation:FlushInterval must be between 1 ms and 1 s")]
    [InlineData("Generation:FlushMaxChunks", "0", "Generation:FlushMaxChunks must be between")]
    [InlineData("Generation:MaxChunksPerCommit", "100", "Generation:MaxChunksPerCommit must be between Generation:FlushMaxChunks (512)")]
    [InlineData("Generation:LogRetention", "-00:01:00", "Generation:LogRetention must be a positive duration")]
    public async Task StartAsync_InvalidSetting_FailsAtStartupNamingTheSetting(string key, string value, string message)
    {
        var error = await Should.ThrowAsync<Microsoft.Extensions.Options.OptionsValidationException>(async () =>
        {
            await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { [key] = value });
        });

        error.Message.ShouldContain(message);
    }

    [Fact(Timeout = 30_000)]
    public async Task Run_BackendNoLongerConfigured_FailsWithWhatToSetAndDoesNotBlockOthers()
    {
        using var temp = new TempDirectory();
        string id;
        await using (var before = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Backends:gone:Type"] = "scripted" }, temp.Path, startRunner: false))
        {
            id = (await before.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest() with { Backend = "gone", Model = "m" })).Session.Id;
        }

        await using var host = await GenerationTestHost.StartAsync(dataDirectory: temp.Path);
        var (good, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest());

        var failed = await host.WaitForStatusAsync(id, GenerationStatus.Failed);
        var completed = await host.WaitForStatusAsync(good.Id, GenerationStatus.Completed);

        failed.Error!.ShouldContain("Backends:gone:BaseUrl");
        failed.Error!.ShouldContain("resume");
        completed.Output.ShouldNotBeEmpty();
    }
}

public sealed class GenerationConcurrencyLimitTests
{
    [Fact(Timeout = 60_000)]
    public async Task Run_BackendAtItsLimit_ExtraSessionsWaitQueuedAndOtherBackendsStillRun()
    {
        // 60 tokens at 5 tokens/s: a slow run lasts 12 s, far longer than this test looks at it.
        await using var host = await GenerationTestHost.StartAsync(
            new Dictionary<string, string?>
            {
                ["Backends:slow:Type"] = "scripted",
                ["Backends:slow:MaxConcurrency"] = "2",
                ["Scripted:TokensPerSecond"] = "5",
            },
            startRunner: false);
        for (var i = 0; i < 300; i++)
        {
            await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest($"slow {i}") with { Backend = "slow" });
        }

        await host.StartRunnerAsync();
        var (fast, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest("fast") with { Backend = "scripted" });
        var fastRunning = await Poll.UntilAsync(() => host.Sessions.GetAsync(fast.Id, null), s => s.Status != GenerationStatus.Queued, "the other backend's session to start");
        var running = await host.Sessions.ListAsync(new GenerationListQuery { Status = GenerationStatus.Running, Limit = 500 });
        var queued = await host.Sessions.ListAsync(new GenerationListQuery { Status = GenerationStatus.Queued, Limit = 500 });

        running.Items.Count(s => s.Backend == "slow").ShouldBe(2);
        queued.Items.Count(s => s.Backend == "slow").ShouldBe(298);
        fastRunning.Status.ShouldBeOneOf(GenerationStatus.Running, GenerationStatus.Completed);
    }
}
