using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Tests.Generation;

public sealed class GenerationControlTests
{
    private static readonly Dictionary<string, string?> Slow = new()
    {
        ["Scripted:TokensPerSecond"] = "100",
        ["Scripted:MaxTokens"] = "60",
    };

    /// <summary>60 tokens in 3 s: a control sent after the first few tokens surely reaches a running session.</summary>
    private static readonly Dictionary<string, string?> Slower = new()
    {
        ["Scripted:TokensPerSecond"] = "20",
        ["Scripted:MaxTokens"] = "60",
    };

    [Fact(Timeout = 60_000)]
    public async Task PauseAsync_ThenResume_OutputEqualsUninterruptedRun()
    {
        await using var host = await GenerationTestHost.StartAsync(Slow);
        var request = GenerationTestHost.ScriptedRequest(seed: 11);
        var (session, _) = await host.Sessions.CreateAsync(request);
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 10, "some output");

        var paused = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        var pausedOutput = paused.Output;
        var resumed = await host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        paused.Status.ShouldBe(GenerationStatus.Paused);
        paused.PauseReason.ShouldBe("user");
        pausedOutput.Length.ShouldBeGreaterThan(0);
        pausedOutput.Length.ShouldBeLessThan(done.Output.Length);
        resumed.Status.ShouldBeOneOf(GenerationStatus.Queued, GenerationStatus.Running);
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
        done.Attempts.ShouldBe(2);
        done.Continuation.ShouldBe("prefill");
    }

    [Fact(Timeout = 60_000)]
    public async Task PauseAsync_Repeated_SucceedsWithoutChange()
    {
        await using var host = await GenerationTestHost.StartAsync(Slow);
        var (session, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest());
        var first = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));

        var second = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice);

        first.Status.ShouldBe(GenerationStatus.Paused);
        second.Version.ShouldBe(first.Version);
        second.Status.ShouldBe(GenerationStatus.Paused);
    }

    [Fact(Timeout = 60_000)]
    public async Task ResumeAsync_CompletedSession_ThrowsConflictWithClearMessage()
    {
        await using var host = await GenerationTestHost.StartAsync();
        var (session, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest());
        await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        var error = await Should.ThrowAsync<SessionConflictException>(() => host.Sessions.ResumeAsync(session.Id, GenerationTestHost.Alice));

        error.Message.ShouldContain("already completed");
        error.CurrentState.ShouldBe("completed");
    }

    [Fact(Timeout = 60_000)]
    public async Task CancelAsync_Repeated_ReturnsSameRecord()
    {
        await using var host = await GenerationTestHost.StartAsync(Slow);
        var (session, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest());
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 3, "some output");

        var first = await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        var second = await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice);
        var third = await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(1));

        first.Status.ShouldBe(GenerationStatus.Cancelled);
        first.Output.ShouldNotBeEmpty();
        foreach (var again in new[] { second, third })
        {
            (again.Version, again.Status, again.Output, again.UpdatedAt).ShouldBe((first.Version, first.Status, first.Output, first.UpdatedAt));
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task CancelAsync_StaleExpectedVersion_ThrowsConflictAndChangesNothing()
    {
        await using var host = await GenerationTestHost.StartAsync(Slow);
        var (session, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest());
        var paused = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));

        await Should.ThrowAsync<SessionConflictException>(() => host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice, expectedVersion: paused.Version - 1));
        var after = await host.Sessions.GetAsync(session.Id, null);

        after.Status.ShouldBe(GenerationStatus.Paused);
        after.Version.ShouldBe(paused.Version);
    }

    [Fact(Timeout = 60_000)]
    public async Task ResumeAsync_TwoConcurrent_ExactlyOneRun()
    {
        await using var host = await GenerationTestHost.StartAsync(Slow);
        var request = GenerationTestHost.ScriptedRequest(seed: 5);
        var (session, _) = await host.Sessions.CreateAsync(request);
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 5, "some output");
        var paused = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));

        var resumes = await Task.WhenAll(
            Task.Run(() => host.Sessions.ResumeAsync(session.Id, new Actor("alice"))),
            Task.Run(() => host.Sessions.ResumeAsync(session.Id, new Actor("bob"))));
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);
        var audit = await host.Sessions.ReadLogAsync(session.Id, null, 0, 5000);

        resumes.ShouldAllBe(r => r.Version > paused.Version && r.Status != GenerationStatus.Paused);
        done.Attempts.ShouldBe(2);
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
        audit.Count(e => e.StatusChange?.Status == GenerationStatus.Running).ShouldBe(2);
    }

    [Fact(Timeout = 60_000)]
    public async Task CreateAsync_FiveConcurrentWithOneIdempotencyKey_OneSession()
    {
        await using var host = await GenerationTestHost.StartAsync();
        var request = GenerationTestHost.ScriptedRequest() with { IdempotencyKey = "start-123" };

        var results = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Task.Run(() => host.Sessions.CreateAsync(request))));
        var page = await host.Sessions.ListAsync(new GenerationListQuery { Owner = "alice" });

        results.Select(r => r.Session.Id).Distinct().Count().ShouldBe(1);
        results.Count(r => r.Created).ShouldBe(1);
        page.Items.Count.ShouldBe(1);
    }

    [Fact(Timeout = 60_000)]
    public async Task CreateAsync_SameKeyDifferentRequest_ThrowsConflict()
    {
        await using var host = await GenerationTestHost.StartAsync();
        await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest(seed: 1) with { IdempotencyKey = "k1" });

        var error = await Should.ThrowAsync<SessionConflictException>(() => host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest(seed: 2) with { IdempotencyKey = "k1" }));

        error.Message.ShouldContain("Idempotency-Key");
    }

    [Fact(Timeout = 60_000)]
    public async Task GetAsync_OtherOwner_NotFound()
    {
        await using var host = await GenerationTestHost.StartAsync();
        var (session, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest(owner: "alice"));

        await Should.ThrowAsync<SessionNotFoundException>(() => host.Sessions.GetAsync(session.Id, "bob"));
        await Should.ThrowAsync<SessionNotFoundException>(() => host.Sessions.CancelAsync(session.Id, new Actor("bob"), "bob"));
        (await host.Sessions.GetAsync(session.Id, "alice")).Id.ShouldBe(session.Id);
        (await host.Sessions.GetAsync(session.Id, null)).Id.ShouldBe(session.Id);
    }

    [Fact(Timeout = 60_000)]
    public async Task FollowAsync_SeveralReaders_NoGapNoDuplicateAndEndsAtTerminal()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "300", ["Scripted:MaxTokens"] = "90" });
        var request = GenerationTestHost.ScriptedRequest(seed: 3);
        var (session, _) = await host.Sessions.CreateAsync(request);

        async Task<List<GenerationLogEvent>> FollowAsync(long after)
        {
            var events = new List<GenerationLogEvent>();
            await foreach (var e in host.Sessions.FollowAsync(session.Id, "alice", after))
            {
                events.Add(e);
            }

            return events;
        }

        var early = FollowAsync(0);
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 20, "some output");
        var middle = FollowAsync(5);
        var late = FollowAsync(0);
        var all = await Task.WhenAll(early, middle, late);
        var done = await host.Sessions.GetAsync(session.Id, null);

        foreach (var (events, after) in new[] { (all[0], 0L), (all[1], 5L), (all[2], 0L) })
        {
            events.Select(e => e.Seq).ShouldBe(Enumerable.Range((int)after + 1, events.Count).Select(i => (long)i));
            events[^1].StatusChange!.Status.ShouldBe(GenerationStatus.Completed);
            events[^1].Seq.ShouldBe(done.LastSeq);
        }

        string.Concat(all[0].Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(done.Output);
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request, 90));
    }

    [Fact(Timeout = 60_000)]
    public async Task ForkAsync_AtSeq_StartsWithPrefixAndContinues()
    {
        await using var host = await GenerationTestHost.StartAsync();
        var request = GenerationTestHost.ScriptedRequest(seed: 9);
        var (parent, _) = await host.Sessions.CreateAsync(request);
        var done = await host.WaitForStatusAsync(parent.Id, GenerationStatus.Completed);
        var log = await host.Sessions.ReadLogAsync(parent.Id, null, 0, 5000);
        var at = log.Where(e => e.Type == GenerationLogEventType.Chunk).ElementAt(20).Seq;
        var prefix = string.Concat(log.Where(e => e.Type == GenerationLogEventType.Chunk && e.Seq <= at).Select(e => e.Text));

        var fork = await host.Sessions.ForkAsync(parent.Id, GenerationTestHost.Alice, "alice", at);
        var forkDone = await host.WaitForStatusAsync(fork.Id, GenerationStatus.Completed);

        fork.Output.ShouldBe(prefix);
        fork.ForkedFrom.ShouldBe(parent.Id);
        fork.ForkedAtSeq.ShouldBe(at);
        forkDone.Output.ShouldStartWith(prefix);
        forkDone.Output.ShouldBe(done.Output, "the scripted backend continues the same stream");
        (await host.Sessions.GetAsync(parent.Id, null)).Version.ShouldBe(done.Version);
    }

    [Fact(Timeout = 60_000)]
    public async Task FollowCommittedAsync_SeveralReaders_OnlyCommittedEventsNoGapNoDuplicate()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "300", ["Scripted:MaxTokens"] = "90" });
        var request = GenerationTestHost.ScriptedRequest(seed: 4);
        var (session, _) = await host.Sessions.CreateAsync(request);
        var committedWhenYielded = true;

        async Task<List<GenerationLogEvent>> FollowAsync(long after)
        {
            var events = new List<GenerationLogEvent>();
            await foreach (var e in host.Sessions.FollowCommittedAsync(session.Id, "alice", after))
            {
                var stored = await host.Sessions.ReadLogAsync(session.Id, null, e.Seq - 1, 1);
                committedWhenYielded &= stored.Count == 1 && stored[0] == e;
                events.Add(e);
            }

            return events;
        }

        var early = FollowAsync(0);
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 20, "some output");
        var middle = FollowAsync(5);
        var all = await Task.WhenAll(early, middle);
        var done = await host.Sessions.GetAsync(session.Id, null);

        committedWhenYielded.ShouldBeTrue();
        all[0].Select(e => e.Seq).ShouldBe(Enumerable.Range(1, all[0].Count).Select(i => (long)i));
        all[1].Select(e => e.Seq).ShouldBe(Enumerable.Range(6, all[1].Count).Select(i => (long)i));
        all[0][^1].Seq.ShouldBe(done.LastSeq);
        string.Concat(all[0].Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(done.Output);
    }

    [Theory(Timeout = 60_000)]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PauseOrCancel_BackendSurfacesAbortAsIOException_StopsNotFails(bool cancel)
    {
        await using var host = await GenerationTestHost.StartAsync(Slower, configure: services => services.AddHoldfastGenerationBackend(
            "io-abort",
            // 600 tokens (30 s): the pause always arrives mid-run, even when a loaded machine stalls the test for seconds.
            sp => new AbortAsIOExceptionChatClient(new Holdfast.Generation.Backends.ScriptedChatClient(
                new ScriptedBackendOptions { TokensPerSecond = 20, MaxTokens = 600 })),
            supportsPrefill: true));
        var request = GenerationTestHost.ScriptedRequest(seed: 12) with { Backend = "io-abort" };

        for (var round = 0; round < 5; round++)
        {
            var (session, _) = await host.Sessions.CreateAsync(request);
            await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 3, "some output");

            var stopped = cancel
                ? await host.Sessions.CancelAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10))
                : await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));

            stopped.Status.ShouldBe(cancel ? GenerationStatus.Cancelled : GenerationStatus.Paused, $"round {round}: {stopped.Error}");
            stopped.Error.ShouldBeNull();
            stopped.Output.ShouldNotBeEmpty();
            GenerationTestHost.ExpectedText(request, configuredMax: 600).ShouldStartWith(stopped.Output);
        }

        host.Logs.WarningsAndErrors.ShouldBeEmpty("a stop is not a backend failure");
    }

    [Fact(Timeout = 60_000)]
    public async Task FollowAsync_ReaderDetachesMidRun_SessionStillCompletesWithFullText()
    {
        await using var host = await GenerationTestHost.StartAsync(Slower);
        var request = GenerationTestHost.ScriptedRequest(seed: 14);
        var (session, _) = await host.Sessions.CreateAsync(request);
        var seen = new List<GenerationLogEvent>();

        await using (var reader = host.Sessions.FollowAsync(session.Id, "alice").GetAsyncEnumerator())
        {
            while (seen.Count(e => e.Type == GenerationLogEventType.Chunk) < 5 && await reader.MoveNextAsync())
            {
                seen.Add(reader.Current);
            }
        }

        var atDetach = await host.Sessions.GetAsync(session.Id, null);
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        seen.Count(e => e.Type == GenerationLogEventType.Chunk).ShouldBe(5);
        atDetach.Status.ShouldBe(GenerationStatus.Running, "the reader detached while the run was going on");
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
        done.Attempts.ShouldBe(1);
        host.Runner.IsRunning(session.Id).ShouldBeFalse();
    }

    [Fact(Timeout = 60_000)]
    public async Task ForkAsync_RunningParent_ChildStartsWithPrefixAndParentContinuesUnaffected()
    {
        await using var host = await GenerationTestHost.StartAsync(Slower);
        var request = GenerationTestHost.ScriptedRequest(seed: 15);
        var (parent, _) = await host.Sessions.CreateAsync(request);
        var running = await Poll.UntilAsync(() => host.Sessions.GetAsync(parent.Id, null), s => s.Usage.OutputTokens >= 10, "some parent output");
        var log = await host.Sessions.ReadLogAsync(parent.Id, null, 0, 5000);
        var at = log.Where(e => e.Type == GenerationLogEventType.Chunk).ElementAt(7).Seq;
        var prefix = string.Concat(log.Where(e => e.Type == GenerationLogEventType.Chunk && e.Seq <= at).Select(e => e.Text));

        var child = await host.Sessions.ForkAsync(parent.Id, GenerationTestHost.Alice, "alice", at);
        var parentAfterFork = await host.Sessions.GetAsync(parent.Id, null);
        var childDone = await host.WaitForStatusAsync(child.Id, GenerationStatus.Completed);
        var parentDone = await host.WaitForStatusAsync(parent.Id, GenerationStatus.Completed);
        var parentLog = await host.Sessions.ReadLogAsync(parent.Id, null, 0, 5000);

        running.Status.ShouldBe(GenerationStatus.Running);
        parentAfterFork.Status.ShouldBe(GenerationStatus.Running, "forking does not touch the parent");
        parentAfterFork.Version.ShouldBe(running.Version);
        child.Output.ShouldBe(prefix);
        child.ForkedAtSeq.ShouldBe(at);
        childDone.Output.ShouldStartWith(prefix);
        childDone.Output.ShouldBe(GenerationTestHost.ExpectedText(request), "the scripted backend continues the same stream");
        parentDone.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
        parentDone.Attempts.ShouldBe(1);
        parentLog.Where(e => e.StatusChange is not null).Select(e => e.StatusChange!.Status)
            .ShouldBe([GenerationStatus.Queued, GenerationStatus.Running, GenerationStatus.Completed]);
    }

    [Fact(Timeout = 60_000)]
    public async Task ForkAsync_AtSeqZero_ChildStartsEmptyAndProducesTheWholeText()
    {
        await using var host = await GenerationTestHost.StartAsync();
        var request = GenerationTestHost.ScriptedRequest(seed: 16);
        var (parent, _) = await host.Sessions.CreateAsync(request);
        await host.WaitForStatusAsync(parent.Id, GenerationStatus.Completed);

        var child = await host.Sessions.ForkAsync(parent.Id, GenerationTestHost.Alice, "alice", atSeq: 0);
        var childDone = await host.WaitForStatusAsync(child.Id, GenerationStatus.Completed);

        child.Output.ShouldBeEmpty();
        child.Usage.OutputTokens.ShouldBe(0);
        child.ForkedAtSeq.ShouldBe(0);
        childDone.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
        childDone.Continuation.ShouldBeNull("nothing to continue");
    }

    [Fact(Timeout = 60_000)]
    public async Task ForkAsync_PauseAndCancelTheChild_ParentRunsOnUntouched()
    {
        // 60 tokens at 15 tokens/s: the parent runs for 4 s, while the child is forked, paused and cancelled.
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "15", ["Scripted:MaxTokens"] = "60" });
        var request = GenerationTestHost.ScriptedRequest(seed: 17);
        var (parent, _) = await host.Sessions.CreateAsync(request);
        var before = await Poll.UntilAsync(() => host.Sessions.GetAsync(parent.Id, null), s => s.Usage.OutputTokens >= 5, "some parent output");
        var child = await host.Sessions.ForkAsync(parent.Id, GenerationTestHost.Alice, "alice");
        await host.WaitForStatusAsync(child.Id, GenerationStatus.Running);

        var childPaused = await host.Sessions.PauseAsync(child.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        var parentWhileChildPaused = await host.Sessions.GetAsync(parent.Id, null);
        var childCancelled = await host.Sessions.CancelAsync(child.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(10));
        var parentDone = await host.WaitForStatusAsync(parent.Id, GenerationStatus.Completed);
        var parentAudit = await host.Sessions.ReadAuditAsync(parent.Id, null);

        childPaused.Status.ShouldBe(GenerationStatus.Paused);
        childCancelled.Status.ShouldBe(GenerationStatus.Cancelled);
        parentWhileChildPaused.Status.ShouldBe(GenerationStatus.Running);
        parentWhileChildPaused.DesiredState.ShouldBe(GenerationDesiredState.Running);
        parentWhileChildPaused.Version.ShouldBe(before.Version);
        parentDone.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
        parentDone.Attempts.ShouldBe(1);
        parentAudit.Events.Select(a => a.Action).ShouldNotContain("pause");
        parentAudit.Events.Select(a => a.Action).ShouldNotContain("cancel");
    }

    /// <summary>
    /// A backend whose HTTP stack reports an aborted request as an <see cref="IOException"/> instead of an
    /// <see cref="OperationCanceledException"/> (as some providers' clients do): wraps another client.
    /// </summary>
    private sealed class AbortAsIOExceptionChatClient(Microsoft.Extensions.AI.IChatClient inner) : Microsoft.Extensions.AI.IChatClient
    {
        public Task<Microsoft.Extensions.AI.ChatResponse> GetResponseAsync(
            IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages, Microsoft.Extensions.AI.ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            inner.GetResponseAsync(messages, options, cancellationToken);

        public async IAsyncEnumerable<Microsoft.Extensions.AI.ChatResponseUpdate> GetStreamingResponseAsync(
            IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages,
            Microsoft.Extensions.AI.ChatOptions? options = null,
            [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            await using var updates = inner.GetStreamingResponseAsync(messages, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
            while (true)
            {
                try
                {
                    if (!await updates.MoveNextAsync())
                    {
                        yield break;
                    }
                }
                catch (OperationCanceledException ex)
                {
                    throw new IOException("Unable to read data from the transport connection: Connection reset by peer.", ex);
                }

                yield return updates.Current;
            }
        }

        public object? GetService(Type serviceType, object? serviceKey = null) => inner.GetService(serviceType, serviceKey);

        public void Dispose() => inner.Dispose();
    }
}
