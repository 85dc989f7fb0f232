namespace Holdfast.Sessions;

/// <summary>
/// Who asks for a change, and why: written into the audit trail with every change.
/// <paramref name="Name"/> is a user name, or a system actor such as <c>system:runner</c>.
/// </summary>
public sealed record Actor(string Name, string? Reason = null)
{
    public static Actor System(string component, string? reason = null) => new($"system:{component}", reason);

    public Actor WithReason(string? reason) => this with { Reason = reason };
}
