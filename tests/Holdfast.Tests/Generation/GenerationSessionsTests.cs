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
