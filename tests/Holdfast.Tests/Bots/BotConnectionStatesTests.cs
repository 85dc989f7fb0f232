using Holdfast.Bots;

namespace Holdfast.Tests.Bots;

/// <summary>The connection state machine, as a table: every (from, to) pair.</summary>
public sealed class BotConnectionStatesTests
{
    // Rows: from (first column; "-" = nothing reported yet). Columns: to, in enum order:
    // starting, awaiting_qr, connected, reconnecting, disconnected, logged_out, failed. Y = allowed.
    private static readonly string[] Table =
    [
        "-            Y Y Y Y Y Y Y",
        "starting     Y Y Y Y Y Y Y",
        "awaiting_qr  Y Y Y Y Y Y Y",
        "connected    Y N Y Y Y Y Y",
        "reconnecting Y Y Y Y Y Y Y",
        "disconnected Y Y Y Y Y Y Y",
        "logged_out   Y Y N N N Y Y",
        "failed       Y N N N N N Y",
    ];

    public static TheoryData<string, string, bool> Moves()
    {
        var data = new TheoryData<string, string, bool>();
        var states = Enum.GetValues<BotConnectionState>();
        foreach (var row in Table)
        {
            var cells = row.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            cells.Length.ShouldBe(1 + states.Length);
            for (var i = 0; i < states.Length; i++)
            {
                data.Add(cells[0], states[i].ToWire(), cells[i + 1] == "Y");
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Moves))]
    public void CheckTransition_Table(string from, string to, bool allowed)
    {
        BotConnectionState? current = from == "-" ? null : BotConnectionStates.Parse(from);

        var refusal = BotConnectionStates.CheckTransition(current, BotConnectionStates.Parse(to));

        if (allowed)
        {
            refusal.ShouldBeNull();
        }
        else
        {
            refusal.ShouldNotBeNull().ShouldContain($"from '{from}' to '{to}'");
        }
    }

    [Fact]
    public void WireNames_AreTheIssuesSeven_AndRoundTrip()
    {
        BotConnectionStates.WireNames.ShouldBe(["starting", "awaiting_qr", "connected", "reconnecting", "disconnected", "logged_out", "failed"]);
        foreach (var state in Enum.GetValues<BotConnectionState>())
        {
            BotConnectionStates.Parse(state.ToWire()).ShouldBe(state);
        }

        BotConnectionStates.TryParse("connecting", out _).ShouldBeFalse();
    }

    [Fact]
    public void IsRestorable_SkipsFailedAndLoggedOut()
    {
        Enum.GetValues<BotConnectionState>().Where(s => !BotConnectionStates.IsRestorable(s))
            .ShouldBe([BotConnectionState.LoggedOut, BotConnectionState.Failed], ignoreOrder: true);
        BotConnectionStates.IsRestorable(null).ShouldBeTrue();
    }
}
