using Holdfast.Audit;
using Holdfast.Client.Models;
using Holdfast.Sessions;

namespace Holdfast.Server.Endpoints;

/// <summary>Validation and mapping shared by the endpoint classes.</summary>
internal static class EndpointHelpers
{
    /// <summary>Default and largest page sizes of every list.</summary>
    public const int DefaultLimit = 50;

    public const int MaxLimit = 500;

    /// <summary>A route or query id: valid, or <see cref="InvalidSessionInputException"/> (400, nothing changed).</summary>
    public static string ValidId(string? id, string field = "id") => SessionIds.Validate(id, field);

    public static int ValidLimit(int? limit, int max = MaxLimit, int fallback = DefaultLimit)
    {
        var value = limit ?? fallback;
        if (value < 1 || value > max)
        {
            throw new InvalidSessionInputException("limit", $"'limit' must be between 1 and {max}; it was {value}.");
        }

        return value;
    }

    public static long? ValidSeq(long? seq, string field)
    {
        if (seq is < 0)
        {
            throw new InvalidSessionInputException(field, $"'{field}' must be 0 or more; it was {seq}.");
        }

        return seq;
    }

    public static Client.Models.AuditPage ToWire(Audit.AuditPage page) =>
        new(page.Events.Select(ToWire).ToList(), page.NextBeforeSeq);

    public static AuditEntry ToWire(AuditEvent e) =>
        new(e.Kind.ToWire(), e.SessionId, e.Seq, e.At, e.Actor, e.Action, e.FromState, e.ToState, e.Detail);

    public static Actor ActorOf(Holdfast.Security.Principal caller, string? reason = null) => new(caller.User, reason);
}
