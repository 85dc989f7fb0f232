using System.Net;
using Holdfast.Bots;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Server.Tests;

/// <summary>
/// Issue 10 item 1: a bot session cannot be claimed by naming its id. Starting an id that is another user's, or that
/// has no owner (created through the library), answers one uniform 409 <c>bot_id_unavailable</c> and changes nothing;
/// only an admin gives a session an owner (<c>POST /api/v1/bots/{id}/owner</c>, audited).
/// </summary>
public sealed class BotClaimTests
{
    [Fact(Timeout = 60_000)]
    public async Task Start_IdOwnedByAnotherOrByNobody_SameConflictBody_NothingChanges()
    {
        await using var server = await TestServer.StartAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));
        (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("owned-bot", "bridge"))).StatusCode.ShouldBe(HttpStatusCode.Created);
        await alice.PostAsync("/api/v1/bots/owned-bot/end", null);

        // Created through the library (no owner), with login state, then ended: the row a start would reactivate.
        var manager = server.App.Services.GetRequiredService<BotManager>();
        await manager.StartSessionAsync(new StartBotSession("lib-bot", "bridge"));
        await manager.SaveAuthStateAsync("lib-bot", new byte[] { 42, 42, 42 });
        await manager.EndSessionAsync("lib-bot");
        var libBefore = await manager.GetAsync("lib-bot");
        var ownedBefore = await manager.GetAsync("owned-bot");

        using var claimOwnerless = await bob.PostJsonAsync("/api/v1/bots", new StartBotRequest("lib-bot", "bridge"));
        using var claimOwned = await bob.PostJsonAsync("/api/v1/bots", new StartBotRequest("owned-bot", "bridge"));

        var ownerlessBody = await claimOwnerless.Content.ReadAsStringAsync();
        var ownedBody = await claimOwned.Content.ReadAsStringAsync();
        ((int)claimOwnerless.StatusCode).ShouldBe(409, ownerlessBody);
        ((int)claimOwned.StatusCode).ShouldBe(409, ownedBody);
        ownerlessBody.ShouldBe(ownedBody, "a stranger cannot tell an ownerless id from another user's");
        claimOwnerless.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        using var problem = System.Text.Json.JsonDocument.Parse(ownerlessBody);
        problem.RootElement.GetProperty("code").GetString().ShouldBe("bot_id_unavailable");
        problem.RootElement.GetProperty("type").GetString().ShouldEndWith("bot_id_unavailable");

        (await manager.GetAsync("lib-bot")).ShouldBe(libBefore);
        (await manager.GetAsync("owned-bot")).ShouldBe(ownedBefore);
        (await bob.GetAsync("/api/v1/bots/lib-bot/auth-state")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await (await bob.GetAsync("/api/v1/bots")).ReadAsync<ItemPage<Bot>>()).Items.ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task AssignOwner_AdminOnly_Audited_ThenTheOwnerCanUseIt()
    {
        await using var server = await TestServer.StartAsync();
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));
        using var admin = server.Tcp(await server.CreateKeyAsync("root", admin: true));
        var manager = server.App.Services.GetRequiredService<BotManager>();
        await manager.StartSessionAsync(new StartBotSession("lib-bot", "bridge"));

        var refused = await bob.PostJsonAsync("/api/v1/bots/lib-bot/owner", new BotOwnerAssignment("bob"));
        ((int)refused.StatusCode).ShouldBe(403, await refused.Content.ReadAsStringAsync());
        (await manager.GetAsync("lib-bot")).Owner.ShouldBeNull();
        await (await admin.PostJsonAsync("/api/v1/bots/no-such-bot/owner", new BotOwnerAssignment("bob"))).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await admin.PostJsonAsync("/api/v1/bots/lib-bot/owner", new BotOwnerAssignment("not a name"))).ShouldBeProblemAsync(HttpStatusCode.BadRequest);

        var assigned = await (await admin.PostJsonAsync("/api/v1/bots/lib-bot/owner", new BotOwnerAssignment("bob"))).ReadAsync<Bot>();

        assigned.Owner.ShouldBe("bob");
        (await (await bob.GetAsync("/api/v1/bots/lib-bot")).ReadAsync<Bot>()).Owner.ShouldBe("bob");
        (await bob.PostJsonAsync("/api/v1/bots/lib-bot/messages", new BotMessage("now mine"))).StatusCode.ShouldBe(HttpStatusCode.OK);
        var audit = await (await admin.GetAsync("/api/v1/bots/lib-bot/events")).ReadAsync<AuditPage>();
        audit.Items.ShouldContain(e => e.Action == "bot.owner" && e.Actor == "root" && e.Detail == "owner none -> bob", string.Join("; ", audit.Items));
    }

    [Fact(Timeout = 60_000)]
    public async Task Admin_StartsAnOwnerlessBot_ItStaysOwnerless()
    {
        await using var server = await TestServer.StartAsync();
        using var admin = server.Tcp(await server.CreateKeyAsync("root", admin: true));
        var manager = server.App.Services.GetRequiredService<BotManager>();
        await manager.StartSessionAsync(new StartBotSession("lib-bot", "bridge"));
        await manager.EndSessionAsync("lib-bot");

        var started = await (await admin.PostJsonAsync("/api/v1/bots", new StartBotRequest("lib-bot", "bridge"))).ReadAsync<Bot>();

        started.Status.ShouldBe(BotStatus.Active);
        started.Owner.ShouldBeNull("a start never gives a session an owner; only POST /api/v1/bots/{id}/owner does");
    }
}
