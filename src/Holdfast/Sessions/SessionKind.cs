namespace Holdfast.Sessions;

/// <summary>The two kinds of session Holdfast keeps.</summary>
public enum SessionKind
{
    Generation,
    Bot,
}

/// <summary>Wire and storage names of <see cref="SessionKind"/>.</summary>
public static class SessionKindNames
{
    public static string ToWire(this SessionKind kind) => kind switch
    {
        SessionKind.Generation => "generation",
        SessionKind.Bot => "bot",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown session kind."),
    };

    public static SessionKind Parse(string value) => value switch
    {
        "generation" => SessionKind.Generation,
        "bot" => SessionKind.Bot,
        _ => throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown session kind."),
    };
}
