using Microsoft.AspNetCore.Routing;

namespace Holdfast.Server.OpenAi;

/// <summary>The OpenAI-compatible face under <c>/v1</c>.</summary>
internal static class OpenAiEndpoints
{
    public static IEndpointRouteBuilder MapOpenAiApi(this IEndpointRouteBuilder app) => app;
}
