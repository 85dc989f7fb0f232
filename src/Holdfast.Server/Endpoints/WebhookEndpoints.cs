using Holdfast.Client.Models;
using Holdfast.Server.Security;
using Holdfast.Webhooks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using static Holdfast.Server.Endpoints.EndpointHelpers;

namespace Holdfast.Server.Endpoints;

/// <summary>
/// <c>/api/v1/webhooks</c>: the caller's webhook subscriptions and their delivery logs. Another user's subscription
/// is a 404 like a missing one; admins see and delete all (a subscription always hears its owner's sessions).
/// </summary>
internal static class WebhookEndpoints
{
    public static RouteGroupBuilder MapWebhookApi(this IEndpointRouteBuilder api)
    {
        var webhooks = api.MapGroup("/webhooks").WithTags("Webhooks");
        webhooks.MapPost("/", CreateAsync).WithSummary("Subscribes the caller's sessions' events to a URL; the whsec_ secret is in this answer only.");
        webhooks.MapGet("/", ListAsync).WithSummary("The caller's subscriptions (admins: all), never with their secrets.");
        webhooks.MapGet("/{id}", GetAsync).WithSummary("One subscription.");
        webhooks.MapDelete("/{id}", DeleteAsync).WithSummary("Deletes a subscription and its pending deliveries.");
        webhooks.MapGet("/{id}/deliveries", DeliveriesAsync).WithSummary("The delivery log, newest first: webhook-id, event, status, attempts, last answer; ?before=cursor&limit=N.");
        return webhooks;
    }

    private static async Task<Created<Client.Models.CreatedWebhook>> CreateAsync(
        CreateWebhookRequest request,
        HttpContext context,
        WebhookSubscriptions webhooks,
        CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var created = await webhooks.CreateAsync(caller.User, request.Url, request.EventTypes, request.Secret, cancellationToken);
        var s = created.Subscription;
        return TypedResults.Created(
            $"/api/v1/webhooks/{s.Id}",
            new Client.Models.CreatedWebhook(s.Id, s.Owner, s.Url, s.EventTypes, s.CreatedAt, created.Secret));
    }

    private static async Task<Ok<ItemPage<Webhook>>> ListAsync(HttpContext context, WebhookSubscriptions webhooks, CancellationToken cancellationToken)
    {
        var caller = context.Caller();
        var all = await webhooks.ListAsync(caller.IsAdmin ? null : caller.User, cancellationToken);
        return TypedResults.Ok(new ItemPage<Webhook>(all.Select(ToWire).ToList(), null));
    }

    private static async Task<Ok<Webhook>> GetAsync(string id, HttpContext context, WebhookSubscriptions webhooks, CancellationToken cancellationToken) =>
        TypedResults.Ok(ToWire(await webhooks.GetAsync(ValidId(id), OwnerFilter(context), cancellationToken)));

    private static async Task<NoContent> DeleteAsync(string id, HttpContext context, WebhookSubscriptions webhooks, CancellationToken cancellationToken)
    {
        await webhooks.DeleteAsync(ValidId(id), OwnerFilter(context), cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<ItemPage<WebhookDeliveryInfo>>> DeliveriesAsync(
        string id,
        string? before,
        int? limit,
        HttpContext context,
        WebhookSubscriptions webhooks,
        CancellationToken cancellationToken)
    {
        var page = await webhooks.DeliveriesAsync(ValidId(id), OwnerFilter(context), before, ValidLimit(limit, 1000, 100), cancellationToken);
        return TypedResults.Ok(new ItemPage<WebhookDeliveryInfo>(page.Items.Select(ToWire).ToList(), page.NextCursor));
    }

    private static string? OwnerFilter(HttpContext context)
    {
        var caller = context.Caller();
        return caller.IsAdmin ? null : caller.User;
    }

    private static Webhook ToWire(WebhookSubscription s) => new(s.Id, s.Owner, s.Url, s.EventTypes, s.CreatedAt);

    internal static WebhookDeliveryInfo ToWire(WebhookDelivery d) => new(
        d.Id,
        d.SubscriptionId,
        d.EventType,
        d.SessionKind,
        d.SessionId,
        d.CreatedAt,
        d.Status.ToWire(),
        d.Attempts,
        d.Status == WebhookDeliveryStatus.Pending ? d.NextAttemptAt : null,
        d.LastAttemptAt,
        d.LastStatus,
        d.LastError,
        d.DeliveredAt);
}
