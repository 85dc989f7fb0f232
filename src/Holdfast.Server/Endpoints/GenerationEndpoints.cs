using Microsoft.AspNetCore.Routing;

namespace Holdfast.Server.Endpoints;

/// <summary><c>/api/v1/generations</c>: durable generation sessions.</summary>
internal static class GenerationEndpoints
{
    public static IEndpointRouteBuilder MapGenerationApi(this IEndpointRouteBuilder api) => api;
}
