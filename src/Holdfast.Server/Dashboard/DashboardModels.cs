using Holdfast.Bots;
using Holdfast.Generation;
using Holdfast.Sessions;

namespace Holdfast.Server.Dashboard;

/// <summary>
/// One row of the dashboard's sessions list, for either kind: what the list shows and what the session views need
/// to enable their buttons. <see cref="Version"/> grows with every change of status (generations: not with output,
/// so <see cref="OutputTokens"/> orders those); a browser keeps the newest it saw. <see cref="Holder"/> is the node that
/// holds the session's lease (runs a running generation, or a bot's connection), null otherwise.
/// </summary>
internal sealed record DashboardSession(
    string Kind,
    string Id,
    string Status,
    string? Owner,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    long Version,
    string? Model = null,
    string? DesiredState = null,
    string? PauseReason = null,
    string? Error = null,
    long? OutputTokens = null,
    int? MaxTokens = null,
    string? FinishReason = null,
    string? ForkedFrom = null,
    string? BotType = null,
    string? LastMessage = null,
    DateTimeOffset? LastMessageAt = null,
    string? Connection = null,
    bool HasQr = false,
    string? Holder = null)
{
    public static DashboardSession From(GenerationSession s) => new(
        SessionKind.Generation.ToWire(),
        s.Id,
        s.Status.ToWire(),
        s.Owner,
        s.CreatedAt,
        s.UpdatedAt,
        s.Version,
        Model: s.Model,
        DesiredState: s.DesiredState.ToWire(),
        PauseReason: s.PauseReason,
        Error: s.Error,
        OutputTokens: s.Usage.OutputTokens,
        MaxTokens: s.Parameters.MaxTokens,
        FinishReason: s.FinishReason,
        ForkedFrom: s.ForkedFrom);

    public static DashboardSession From(BotSession b) => new(
        SessionKind.Bot.ToWire(),
        b.SessionId,
        b.Status.ToWire(),
        b.Owner,
        b.CreatedAt,
        b.UpdatedAt,
        b.Version,
        BotType: b.BotType,
        LastMessage: b.LastMessage,
        LastMessageAt: b.LastMessageAt,
        Connection: b.ConnectionDetail,
        HasQr: b.QrData is not null,
        Holder: b.Holder?.NodeId);
}

/// <summary>A session that no longer exists (deleted).</summary>
internal sealed record DashboardSessionRef(string Kind, string Id);

/// <summary>Data of the feed's <c>snapshot</c>, <c>upsert</c> and <c>remove</c> events.</summary>
internal sealed record DashboardSessionBatch(IReadOnlyList<DashboardSession> Items);

/// <summary>Data of the feed's <c>remove</c> and <c>deliveries</c> events: which sessions.</summary>
internal sealed record DashboardRemovedBatch(IReadOnlyList<DashboardSessionRef> Items);

/// <summary>Data of the feed's <c>ready</c> event: the snapshot is complete; <see cref="Nodes"/> live nodes share the store.</summary>
internal sealed record DashboardReady(int Generations, int Bots, int Nodes);

/// <summary>Body of <c>POST /api/v1/dashboard/sign-in</c>: an API key, or the token of a one-time login link.</summary>
internal sealed record DashboardSignInRequest(string? ApiKey = null, string? LoginToken = null);

/// <summary>Who the dashboard is signed in as, and how (<c>cookie</c>, <c>key</c> or <c>socket</c>).</summary>
internal sealed record DashboardUser(string User, bool Admin, string SignedInWith);
