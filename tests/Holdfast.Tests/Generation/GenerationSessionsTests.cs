using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.TestHelpers;

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
    [Fact(Timeout = 30_000)]
    public async Task Run_BackendWithInvalidBaseUrl_FailsWithMessageAndDoesNotBlockOthers()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Backends:bad:BaseUrl"] = "ftp://example" });
        var (bad, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest() with { Backend = "bad", Model = "m" });
        var (good, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest());

        var failed = await host.WaitForStatusAsync(bad.Id, GenerationStatus.Failed);
        var completed = await host.WaitForStatusAsync(good.Id, GenerationStatus.Completed);

        failed.Error!.ShouldContain("Backends:bad:BaseUrl");
        completed.Output.ShouldNotBeEmpty();
    }
}

public sealed class GenerationConcurrencyLimitTests
{
    [Fact(Timeout = 60_000)]
    public async Task Run_BackendAtItsLimit_ExtraSessionsWaitQueuedAndOtherBackendsStillRun()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Backends:slow:Type"] = "scripted",
            ["Backends:slow:MaxConcurrency"] = "2",
            ["Scripted:TokensPerSecond"] = "20",
        });
        var slow = new List<GenerationSession>();
        for (var i = 0; i < 300; i++)
        {
            slow.Add((await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest($"slow {i}") with { Backend = "slow" })).Session);
        }

        var (fast, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest("fast") with { Backend = "scripted" });
        await host.WaitForStatusAsync(slow[1].Id, GenerationStatus.Running);
        var fastRunning = await Poll.UntilAsync(() => host.Sessions.GetAsync(fast.Id, null), s => s.Status != GenerationStatus.Queued, "the other backend's session to start");
        var running = await host.Sessions.ListAsync(new GenerationListQuery { Status = GenerationStatus.Running, Limit = 500 });

        running.Items.Count(s => s.Backend == "slow").ShouldBe(2);
        fastRunning.Status.ShouldBeOneOf(GenerationStatus.Running, GenerationStatus.Completed);
        (await host.Sessions.GetAsync(slow[2].Id, null)).Status.ShouldBe(GenerationStatus.Queued);
    }
}
