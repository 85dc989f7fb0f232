using Holdfast.Audit;
using Holdfast.Generation;
using Holdfast.Sessions;

namespace Holdfast.Tests.Generation;

/// <summary>The rules every store applies (GenerationRules, AuditActions, ContinuationModes), as tables.</summary>
public sealed class GenerationRulesTests
{
    private const string Refused = "refused";

    // (last seq, compacted, requested at_seq or null, expected seq or "refused")
    public static TheoryData<long, bool, long?, string> ForkTable => new()
    {
        { 6, false, null, "6" },
        { 6, false, 0, "0" },
        { 6, false, 4, "4" },
        { 6, false, 6, "6" },
        { 6, false, 7, Refused },
        { 6, false, -1, Refused },
        { 6, true, null, "6" },
        { 6, true, 0, "0" },
        { 6, true, 6, "6" },
        { 6, true, 3, Refused },
    };

    [Theory]
    // other live nodes, held by them, held by this node, offered → may take
    [InlineData(0, 0, 0, 10, 10)] // alone: everything
    [InlineData(0, 0, 3, 10, 10)] // alone, holding some: everything
    [InlineData(1, 10, 10, 10, 5)] // two survivors holding 10 each share a dead node's 10: 5 each
    [InlineData(1, 15, 10, 5, 5)] // the second survivor, after the first took its 5
    [InlineData(1, 12, 8, 10, 7)] // the one holding less takes more: both end at 15
    [InlineData(1, 8, 12, 10, 3)]
    [InlineData(2, 0, 0, 1, 1)] // three nodes, one new session: any of them
    [InlineData(2, 1, 0, 1, 1)] // the next goes to a node holding none
    [InlineData(2, 1, 1, 1, 0)] // not to one that holds its share already
    [InlineData(2, 0, 0, 5, 2)] // a burst of 5 over three idle nodes: 2, 2, 1
    [InlineData(1, 0, 20, 3, 0)] // over its share: nothing
    public void ClaimShare_Table(int otherLiveNodes, int heldByOthers, int heldByNode, int offered, int expected)
    {
        GenerationRules.ClaimShare(new ClaimLoad(otherLiveNodes, heldByOthers, heldByNode), offered).ShouldBe(expected);
    }

    [Theory]
    [InlineData(2, 10)]
    [InlineData(3, 7)]
    [InlineData(5, 301)]
    public void ClaimShare_EveryNodeTakingItsShareInTurn_LeavesNothingQueuedAndSpreadsEvenly(int nodes, int queued)
    {
        var held = new int[nodes];
        var left = queued;
        for (var node = 0; node < nodes && left > 0; node++)
        {
            var take = Math.Min(left, GenerationRules.ClaimShare(new ClaimLoad(nodes - 1, held.Sum() - held[node], held[node]), left));
            held[node] += take;
            left -= take;
        }

        left.ShouldBe(0);
        (held.Max() - held.Min()).ShouldBeLessThanOrEqualTo(nodes - 1);
        held.Max().ShouldBeLessThanOrEqualTo((queued + nodes - 1) / nodes);
    }

    [Theory]
    [MemberData(nameof(ForkTable))]
    public void CheckFork_Table(long lastSeq, bool compacted, long? atSeq, string expected)
    {
        var parent = Session(GenerationStatus.Completed) with { LastSeq = lastSeq, LogCompacted = compacted };

        if (expected == Refused)
        {
            Should.Throw<InvalidSessionInputException>(() => GenerationRules.CheckFork(parent, atSeq)).Field.ShouldBe("at_seq");
        }
        else
        {
            GenerationRules.CheckFork(parent, atSeq).ShouldBe(long.Parse(expected, System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [Theory]
    [InlineData(GenerationStatus.Queued, true)]
    [InlineData(GenerationStatus.Running, false)]
    [InlineData(GenerationStatus.Paused, true)]
    [InlineData(GenerationStatus.Completed, true)]
    [InlineData(GenerationStatus.Cancelled, true)]
    [InlineData(GenerationStatus.Failed, true)]
    public void CheckDelete_Table(GenerationStatus status, bool allowed)
    {
        var check = () => GenerationRules.CheckDelete(Session(status));

        if (allowed)
        {
            check.ShouldNotThrow();
        }
        else
        {
            check.ShouldThrow<SessionConflictException>().Message.ShouldContain("running");
        }
    }

    // (stored hash, request hash, expected: the existing session back, or a conflict)
    [Theory]
    [InlineData("h1", "h1", true)]
    [InlineData("h1", "h2", false)]
    [InlineData(null, null, true)]
    [InlineData("h1", null, false)]
    public void CheckIdempotentRetry_Table(string? stored, string? requested, bool sameRequest)
    {
        var check = () => GenerationRules.CheckIdempotentRetry("key-1", Session(GenerationStatus.Queued), stored, requested);

        if (sameRequest)
        {
            check.ShouldNotThrow();
        }
        else
        {
            check.ShouldThrow<SessionConflictException>().Message.ShouldContain("key-1");
        }
    }

    [Fact]
    public void RequestHash_SameRequestAnyMetadataOrder_SameHashOtherwiseDifferent()
    {
        var a = Request(new Dictionary<string, string> { ["x"] = "1", ["y"] = "2" });
        var b = Request(new Dictionary<string, string> { ["y"] = "2", ["x"] = "1" });
        var c = Request(new Dictionary<string, string> { ["x"] = "1" });

        GenerationRules.RequestHash(a, "scripted", GenerationParameters.Default).ShouldBe(GenerationRules.RequestHash(b, "scripted", GenerationParameters.Default));
        GenerationRules.RequestHash(a, "scripted", GenerationParameters.Default).ShouldNotBe(GenerationRules.RequestHash(c, "scripted", GenerationParameters.Default));
        GenerationRules.RequestHash(a, "scripted", GenerationParameters.Default).ShouldNotBe(GenerationRules.RequestHash(a, "default", GenerationParameters.Default));
    }

    // (command, stored last seq, run's last seq, policy, expected command name, gap detail expected)
    [Theory]
    [InlineData(GenerationCommandKind.Complete, 8, 8, GenerationRecoveryPolicy.Auto, "complete", false)]
    [InlineData(GenerationCommandKind.Complete, 5, 8, GenerationRecoveryPolicy.Auto, "interrupt", true)]
    [InlineData(GenerationCommandKind.Complete, 5, 8, GenerationRecoveryPolicy.Manual, "interrupt", true)]
    [InlineData(GenerationCommandKind.Stop, 5, 8, GenerationRecoveryPolicy.Auto, "stop", false)]
    [InlineData(GenerationCommandKind.Fail, 5, 8, GenerationRecoveryPolicy.Auto, "fail", false)]
    public void DecideRunEnd_Table(GenerationCommandKind kind, long stored, long produced, GenerationRecoveryPolicy policy, string expected, bool gap)
    {
        var finish = new RunFinish("gen_1", 1, new GenerationCommand(kind), produced, Recovery: policy);

        var (command, actor) = GenerationRules.DecideRunEnd(Session(GenerationStatus.Running) with { LastSeq = stored }, finish);

        AuditActions.For(command.Kind).ShouldBe(expected);
        (actor.Reason?.Contains("output lost", StringComparison.Ordinal) ?? false).ShouldBe(gap);
        if (gap)
        {
            command.Argument.ShouldBe(policy == GenerationRecoveryPolicy.Manual ? "manual" : "auto");
        }
    }

    [Theory]
    [InlineData(GenerationRecoveryPolicy.Auto, GenerationDesiredState.Running, GenerationStatus.Queued)]
    [InlineData(GenerationRecoveryPolicy.Manual, GenerationDesiredState.Running, GenerationStatus.Paused)]
    [InlineData(GenerationRecoveryPolicy.Auto, GenerationDesiredState.Paused, GenerationStatus.Paused)]
    [InlineData(GenerationRecoveryPolicy.Manual, GenerationDesiredState.Cancelled, GenerationStatus.Cancelled)]
    public void Recovery_Table(GenerationRecoveryPolicy policy, GenerationDesiredState desired, GenerationStatus expected)
    {
        var (command, actor) = GenerationRules.Recovery(policy);

        GenerationStateMachine.ApplyOrThrow(new GenerationState(GenerationStatus.Running, desired), command).To.Status.ShouldBe(expected);
        actor.Name.ShouldBe("system:recovery");
    }

    [Theory]
    [InlineData(false, true, null)]
    [InlineData(false, false, null)]
    [InlineData(true, true, "prefill")]
    [InlineData(true, false, "fallback:instruction")]
    public void ContinuationModes_Table(bool hasOutput, bool supportsPrefill, string? expected) =>
        ContinuationModes.For(hasOutput, supportsPrefill).ShouldBe(expected);

    [Fact]
    public void AuditActions_EveryCommandHasItsVerb() =>
        Enum.GetValues<GenerationCommandKind>().Select(AuditActions.For).ShouldBe(["pause", "resume", "cancel", "claim", "complete", "stop", "fail", "interrupt"]);

    private static CreateGenerationRequest Request(Dictionary<string, string> metadata) => new()
    {
        Owner = "alice",
        Model = "scripted",
        Input = [new GenerationMessage("user", "hi")],
        Metadata = metadata,
    };

    private static GenerationSession Session(GenerationStatus status) => new()
    {
        Id = "gen_1",
        Owner = "alice",
        Backend = "scripted",
        Model = "scripted",
        Input = [new GenerationMessage("user", "hi")],
        Parameters = GenerationParameters.Default,
        Status = status,
        DesiredState = GenerationDesiredState.Running,
        Usage = new GenerationUsage(null, 0),
        Output = string.Empty,
        LastSeq = 1,
        Attempts = 0,
        CreatedAt = DateTimeOffset.UnixEpoch,
        UpdatedAt = DateTimeOffset.UnixEpoch,
        Version = 1,
    };
}
