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

/// <summary>
/// The <see cref="IStoreAdministration"/> contract: migrations once, a read-only schema check, ping and counts, the
/// integrity check, the write probe and the server hold the host uses instead of provider types.
/// </summary>
public abstract class StoreAdministrationContractTests(IStoreProvider provider) : StoreContractTests(provider)
{
    [Fact(Timeout = 60_000)]
    public async Task CheckIntegrityAsync_SoundStoreWithData_SoundAtBothDepthsAndTheFullCheckHasTheMigrations()
    {
        await GenerationData.CompletedSessionAsync(Store, "gen_checked", ["checked ", "text"]);
        await Store.Bots.StartOrReactivateAsync(new Bots.StartBotSession("bot-checked"), GenerationData.Alice);

        var quick = await Store.Administration.CheckIntegrityAsync(StoreCheckDepth.Quick, TimeSpan.FromSeconds(20));
        var full = await Store.Administration.CheckIntegrityAsync(StoreCheckDepth.Full);

        quick.Integrity.ShouldBe(StoreIntegrity.Sound);
        quick.Problems.ShouldBeEmpty();
        quick.Migrations.ShouldBeNull();
        full.Integrity.ShouldBe(StoreIntegrity.Sound);
        full.Location.ShouldBe(Store.Administration.Location);
        full.Method.ShouldNotBeNullOrWhiteSpace();
        full.Migrations!.IsCurrent.ShouldBeTrue();
        full.KnownMigrations.ShouldBe(full.Migrations.Applied.Count);
        full.IsHealthy.ShouldBeTrue();
    }

    [Fact(Timeout = 30_000)]
    public async Task CheckWritableAsync_WritableStore_NullAndNoFailureOrDamageKnown()
    {
        await Store.Generations.CreateAsync(GenerationData.NewSession("gen_writable"), GenerationData.Alice);

        (await Store.Administration.CheckWritableAsync()).ShouldBeNull();

        Store.Administration.WriteFailure.ShouldBeNull();
        Store.Administration.KnownDamage.ShouldBeNull();
        (await Store.Administration.MeasureSizeAsync()).ShouldBeGreaterThan(0);
    }

    [Fact(Timeout = 30_000)]
    public async Task HoldForServer_Released_CanBeHeldAgain()
    {
        var first = Store.Administration.HoldForServer("contract test");
        first.Dispose();

        using var again = Store.Administration.HoldForServer("contract test");

        again.ShouldNotBeNull();
    }

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

/// <summary>
/// Export and import through <see cref="IStoreAdministration"/>: everything out of one store and into an empty one of
/// the same provider gives the same rows; a store that is not empty is refused with nothing written.
/// </summary>
public abstract class StoreTransferContractTests(IStoreProvider provider) : StoreContractTests(provider)
{
    [Fact(Timeout = 60_000)]
    public async Task ImportAsync_ExportOfAnotherStore_SameRowsAndTheSessionsWork()
    {
        await GenerationData.CompletedSessionAsync(Store, "gen_moved", ["moved ", "text"]);
        await Store.Generations.CreateAsync(GenerationData.NewSession("gen_waiting", key: "k1", hash: "h1"), GenerationData.Alice);
        await Store.Bots.StartOrReactivateAsync(new Bots.StartBotSession("bot1"), GenerationData.Alice);
        await Store.Bots.SaveAuthStateAsync("bot1", new byte[] { 1, 2, 3 }, GenerationData.Alice);
        await Store.Keys.AddKeyAsync("k1", "alice", admin: true, new string('a', 64), Clock.GetUtcNow());
        var exported = await ToListAsync(Store.Administration.ExportAsync());
        await using var target = await Provider.CreateStoreAsync(Clock);

        var counts = await target.Administration.ImportAsync(ToAsync(exported));
        var again = await ToListAsync(target.Administration.ExportAsync());

        counts.Values.Sum().ShouldBe(exported.Count);
        again.Count.ShouldBe(exported.Count);
        for (var i = 0; i < exported.Count; i++)
        {
            again[i].Table.ShouldBe(exported[i].Table);
            Comparable(again[i]).ShouldBe(Comparable(exported[i]));
        }

        (await target.Generations.FindAsync("gen_moved", "alice"))!.Output.ShouldBe("moved text");
        (await target.Generations.CreateAsync(GenerationData.NewSession("gen_other", key: "k1", hash: "h1"), GenerationData.Alice)).Change.Session.Id.ShouldBe("gen_waiting", "idempotency keys moved too");
        (await target.Bots.LoadAuthStateAsync("bot1")).ShouldBe(new byte[] { 1, 2, 3 });
        (await target.Keys.FindKeyAsync("k1"))!.SecretHash.ShouldBe(new string('a', 64));
        (await target.Runs.ClaimRunnableAsync(new Generation.RunClaimRequest("node-a", GenerationData.Lease, 10), _ => new Generation.ClaimChoice(true))).ShouldHaveSingleItem();
    }

    [Fact(Timeout = 60_000)]
    public async Task ImportAsync_RunningSessionMidStream_WholeOutputMoved()
    {
        // Running, with chunks committed in several group commits and no status change since: on SQLite the text is
        // still (partly) in the log's tail rather than folded into the row, and the move must carry all of it.
        await Store.Generations.CreateAsync(GenerationData.NewSession("gen_running"), GenerationData.Alice);
        var claim = (await Store.Runs.ClaimRunnableAsync(new Generation.RunClaimRequest("node-a", GenerationData.Lease, 10), _ => new Generation.ClaimChoice(true))).Single();
        var seq = claim.Change.Session.LastSeq;
        var expected = new System.Text.StringBuilder();
        for (var commit = 0; commit < 3; commit++)
        {
            var appends = Enumerable.Range(0, 5).Select(i => new Generation.ChunkAppend("gen_running", claim.Lease.FencingToken, ++seq, $"c{commit}.{i} ")).ToList();
            await Store.Runs.CommitAsync(appends, []);
            expected.Append(string.Concat(appends.Select(a => a.Text)));
        }

        (await Store.Generations.FindAsync("gen_running", "alice"))!.Output.ShouldBe(expected.ToString(), "a running session reads back its whole output");
        var exported = await ToListAsync(Store.Administration.ExportAsync());
        await using var target = await Provider.CreateStoreAsync(Clock);

        await target.Administration.ImportAsync(ToAsync(exported));

        var moved = (await target.Generations.FindAsync("gen_running", "alice"))!;
        moved.Output.ShouldBe(expected.ToString());
        moved.LastSeq.ShouldBe(seq);
        exported.Single(r => r.Table == "generation_sessions").Values["output"].ShouldBe(expected.ToString(), "the export file holds the whole text");
        var again = await ToListAsync(target.Administration.ExportAsync());
        again.Single(r => r.Table == "generation_sessions").Values.Keys.Order(StringComparer.Ordinal)
            .ShouldBe(exported.Single(r => r.Table == "generation_sessions").Values.Keys.Order(StringComparer.Ordinal), "the same columns out as in");
    }

    [Fact(Timeout = 30_000)]
    public async Task ImportAsync_NotEmpty_RefusedAndNothingWritten()
    {
        await Store.Generations.CreateAsync(GenerationData.NewSession("gen_here"), GenerationData.Alice);
        var before = await ToListAsync(Store.Administration.ExportAsync());
        StoreRecord[] incoming = [new("users", new Dictionary<string, object?> { ["name"] = "zed", ["is_admin"] = 0L, ["created_at"] = Clock.GetUtcNow() })];

        await Should.ThrowAsync<Sessions.SessionConflictException>(() => Store.Administration.ImportAsync(ToAsync(incoming)));

        (await ToListAsync(Store.Administration.ExportAsync())).Count.ShouldBe(before.Count);
    }

    /// <summary>A record's values with blobs as hex, so two reads of the same row compare equal.</summary>
    private static Dictionary<string, object?> Comparable(StoreRecord record) =>
        record.Values.ToDictionary(kv => kv.Key, kv => kv.Value is byte[] blob ? Convert.ToHexString(blob) : kv.Value, StringComparer.Ordinal);

    private static async Task<List<StoreRecord>> ToListAsync(IAsyncEnumerable<StoreRecord> records)
    {
        var list = new List<StoreRecord>();
        await foreach (var record in records)
        {
            list.Add(record);
        }

        return list;
    }

    private static async IAsyncEnumerable<StoreRecord> ToAsync(IEnumerable<StoreRecord> records)
    {
        foreach (var record in records)
        {
            await Task.Yield();
            yield return record;
        }
    }
}
