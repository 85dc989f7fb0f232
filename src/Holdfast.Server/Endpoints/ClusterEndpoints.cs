using Holdfast.Client.Models;
using Holdfast.Generation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Holdfast.Server.Endpoints;

/// <summary><c>/api/v1/nodes</c>: the <c>holdfast serve</c> nodes on the store, for admins (the Unix socket is an admin).</summary>
internal static class ClusterEndpoints
{
    public static RouteGroupBuilder MapClusterApi(this IEndpointRouteBuilder api)
    {
        var nodes = api.MapGroup("/nodes").RequireAuthorization(HoldfastServer.AdminPolicy).WithTags("Cluster");
        nodes.MapGet("/", ListAsync).WithSummary("Every node that ran on this store: id, alive, last heartbeat, sessions held.");
        return nodes;
    }

    private static async Task<Ok<ItemPage<ClusterNodeInfo>>> ListAsync(GenerationRunner runner, TimeProvider time, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var nodes = await runner.ListNodesAsync(cancellationToken);
        return TypedResults.Ok(new ItemPage<ClusterNodeInfo>(
            nodes.Select(n => new ClusterNodeInfo(n.NodeId, n.StartedAt, n.HeartbeatAt, n.StoppedAt, n.StoppedAt is null && now - n.HeartbeatAt < runner.Cluster.LeaseDuration, n.SessionsHeld)).ToList(),
            null));
    }
}
