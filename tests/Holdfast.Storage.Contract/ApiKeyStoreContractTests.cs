using Holdfast.Security;

namespace Holdfast.Storage.Contract;

/// <summary>The <see cref="IApiKeyStore"/> contract: keys kept as hashes, users never demoted, revocation kept once.</summary>
public abstract class ApiKeyStoreContractTests(IStoreProvider provider) : StoreContractTests(provider)
{
    [Fact(Timeout = 30_000)]
    public async Task AddKeyAsync_NewAndExistingUser_AdminNeverDemoted()
    {
        var first = await Store.Keys.AddKeyAsync("k1", "alice", admin: true, new string('a', 64), Clock.GetUtcNow());
        Clock.Advance(TimeSpan.FromSeconds(1));
        var second = await Store.Keys.AddKeyAsync("k2", "alice", admin: false, new string('b', 64), Clock.GetUtcNow());
        var bob = await Store.Keys.AddKeyAsync("k3", "bob", admin: false, new string('c', 64), Clock.GetUtcNow());

        first.IsAdmin.ShouldBeTrue();
        second.IsAdmin.ShouldBeTrue("adding a key never demotes its user");
        bob.IsAdmin.ShouldBeFalse();
        (await Store.Keys.ListKeysAsync()).Select(k => k.Id).ShouldBe(["k1", "k2", "k3"]);
        (await Store.Keys.FindKeyAsync("k2"))!.SecretHash.ShouldBe(new string('b', 64));
        (await Store.Keys.FindKeyAsync("nope")).ShouldBeNull();
    }

    [Fact(Timeout = 30_000)]
    public async Task RevokeKeyAsync_Twice_KeepsTheFirstTimeAndUnknownIsNull()
    {
        await Store.Keys.AddKeyAsync("k1", "alice", admin: false, new string('a', 64), Clock.GetUtcNow());
        var at = Clock.GetUtcNow().AddMinutes(1);

        var revoked = await Store.Keys.RevokeKeyAsync("k1", at);
        var again = await Store.Keys.RevokeKeyAsync("k1", at.AddMinutes(5));
        await Store.Keys.TouchKeyAsync("k1", at.AddMinutes(6));

        revoked!.RevokedAt.ShouldBe(at);
        again!.RevokedAt.ShouldBe(at);
        (await Store.Keys.FindKeyAsync("k1"))!.Key.LastUsedAt.ShouldBe(at.AddMinutes(6));
        (await Store.Keys.RevokeKeyAsync("nope", at)).ShouldBeNull();
    }
}

/// <summary>The <see cref="IStoreAdministration"/> contract: migrations once, a read-only schema check, ping and counts.</summary>
public abstract class StoreAdministrationContractTests(IStoreProvider provider) : StoreContractTests(provider)
{
    [Fact(Timeout = 30_000)]
    public async Task MigrateAsync_OnAMigratedStore_AppliesNothingAndTheSchemaIsCurrent()
    {
        var applied = await Store.Administration.MigrateAsync();
        var status = await Store.Administration.GetSchemaStatusAsync();

        applied.ShouldBeEmpty();
        status.IsCurrent.ShouldBeTrue();
        status.Applied.Count.ShouldBeGreaterThan(0);
        await Store.Administration.PingAsync();
    }

    [Fact(Timeout = 30_000)]
    public async Task CountSessionsAsync_ByKindAndStatus()
    {
        await Store.Generations.CreateAsync(GenerationData.NewSession("gen_1"), GenerationData.Alice);
        await Store.Generations.CreateAsync(GenerationData.NewSession("gen_2"), GenerationData.Alice);
        await Store.Bots.StartOrReactivateAsync(new Bots.StartBotSession("bot1"), GenerationData.Alice);

        var counts = await Store.Administration.CountSessionsAsync();

        counts.ShouldContain(new SessionCount(Sessions.SessionKind.Generation, "queued", 2));
        counts.ShouldContain(new SessionCount(Sessions.SessionKind.Bot, "active", 1));
    }
}
