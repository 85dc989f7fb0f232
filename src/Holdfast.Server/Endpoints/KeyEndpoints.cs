using Holdfast.Client.Models;
using Holdfast.Security;
using Holdfast.Server.Errors;
using Holdfast.Server.Security;
using Holdfast.Sessions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Holdfast.Server.Endpoints;

/// <summary><c>/api/v1/keys</c>: API keys, for admins only (the Unix socket is an admin).</summary>
internal static class KeyEndpoints
{
    public static RouteGroupBuilder MapKeyApi(this IEndpointRouteBuilder api)
    {
        var keys = api.MapGroup("/keys").RequireAuthorization(HoldfastServer.AdminPolicy).WithTags("Keys");
        keys.MapGet("/", ListAsync).WithSummary("Every API key (never its secret).");
        keys.MapPost("/", CreateAsync).WithSummary("Creates a key; the secret is in this answer only.");
        keys.MapDelete("/{id}", RevokeAsync).WithSummary("Revokes a key.");
        return keys;
    }

    private static async Task<Ok<ItemPage<ApiKeyInfo>>> ListAsync(ApiKeys store, CancellationToken cancellationToken)
    {
        var all = await store.ListAsync(cancellationToken);
        return TypedResults.Ok(new ItemPage<ApiKeyInfo>(all.Select(ToWire).ToList(), null));
    }

    private static async Task<Created<CreatedApiKey>> CreateAsync(
        CreateApiKeyRequest request,
        ApiKeys store,
        ILogger<ApiKeys> logger,
        CancellationToken cancellationToken)
    {
        var created = await store.CreateAsync(SessionIds.Validate(request.User, "user"), request.Admin, cancellationToken);
        Log.KeyCreated(logger, created.Key.Id, created.Key.User, created.Key.IsAdmin);
        return TypedResults.Created(
            $"/api/v1/keys/{created.Key.Id}",
            new CreatedApiKey(created.Key.Id, created.Key.User, created.Key.IsAdmin, created.Secret));
    }

    private static async Task<Results<Ok<ApiKeyInfo>, ProblemHttpResult>> RevokeAsync(
        string id,
        HttpContext context,
        ApiKeys store,
        ILogger<ApiKeys> logger,
        CancellationToken cancellationToken)
    {
        if (!SessionIds.IsValid(id))
        {
            return ProblemResults.BadRequest("id", "The key id is not valid.");
        }

        var revoked = await store.RevokeAsync(id, cancellationToken);
        Log.KeyRevoked(logger, id, context.Caller().User);
        return TypedResults.Ok(ToWire(revoked));
    }

    private static ApiKeyInfo ToWire(ApiKey key) => new(key.Id, key.User, key.IsAdmin, key.CreatedAt, key.RevokedAt, key.LastUsedAt);
}
