using Microsoft.AspNetCore.Routing;

namespace Holdfast.Server.Endpoints;

/// <summary><c>/api/v1/bots</c>: bot sessions.</summary>
internal static class BotEndpoints
{
    public static IEndpointRouteBuilder MapBotApi(this IEndpointRouteBuilder api) => api;

    public static IEndpointRouteBuilder MapPairingPages(this IEndpointRouteBuilder app) => app;
}
