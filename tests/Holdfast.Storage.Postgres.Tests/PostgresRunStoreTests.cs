using System.Diagnostics;
using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.TestHelpers;

namespace Holdfast.Storage.Postgres.Tests;

/// <summary>
/// What only a shared database can show: two store instances on one PostgreSQL database behave like two nodes
/// (claims, fencing, recovery, change signals), plus the group commit of many sessions in one round trip.
/// </summary>
public sealed class PostgresRunStoreTests : IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(10);
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 12, 3, 1, 0, 0, TimeSpan.Zero));
    private TestDatabase _db = null!;
    private PostgresStore _nodeA = null!;
    private PostgresStore _nodeB = null!;

    public async Task InitializeAsync()
    {
        _db = await TestPostgres.CreateDatabaseAsync();
        _nodeA = new PostgresStore(_db.Uri, _time);
        _nodeB = new PostgresStore(_db.Uri, _time);
        await _nodeA.Administration.MigrateAsync();
    }

    public async Task DisposeAsync()
    {
        await _nodeA.DisposeAsync();
        await _nodeB.DisposeAsync();
        await _db.DisposeAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task ClaimRunnable_TwoNodesAtOnce_EachSessionClaimedExactlyOnce()
    {
        var ids = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            ids.Add((await CreateAsync($"s{i:D3}")).Id);
        }

        var claimsA = new List<RunClaim>();
        var claimsB = new List<RunClaim>();
        await Task.WhenAll(
            Task.Run(async () =>
            {
                for (var round = 0; round < 10; round++)
                {
                    claimsA.AddRange(await _nodeA.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 3), _ => new ClaimChoice(true)));
                }
            }),
            Task.Run(async () =>
            {
                for (var round = 0; round < 10; round++)
                {
                    claimsB.AddRange(await _nodeB.Runs.ClaimRunnableAsync(new RunClaimRequest("node-b", Lease, 3), _ => new ClaimChoice(true)));
                }
            }));
        claimsA.AddRange(await _nodeA.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 100), _ => new ClaimChoice(true)));

        var all = claimsA.Concat(claimsB).Select(c => c.Change.Session.Id).ToList();
        all.Count.ShouldBe(ids.Count);
        all.ShouldBeUnique();
        all.Order(StringComparer.Ordinal).ShouldBe(ids.Order(StringComparer.Ordinal));
        foreach (var claim in claimsB)
        {
            claim.Lease.NodeId.ShouldBe("node-b");
            claim.Lease.FencingToken.ShouldBe(1);
            claim.Change.Session.Attempts.ShouldBe(1);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Commit_StaleFencingToken_LeaseLostAndNothingWritten()
    {
        var session = await CreateAsync("fenced");
        var first = (await _nodeA.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), _ => new ClaimChoice(true))).Single();
        await _nodeA.Runs.CommitAsync([new ChunkAppend(session.Id, first.Lease.FencingToken, first.Change.Session.LastSeq + 1, "Hello")], []);

        // node-a's lease expires; node-b's recovery takes the session and claims it again (epoch 1 -> 2 -> 3).
        _time.Advance(Lease + TimeSpan.FromSeconds(1));
        (await _nodeB.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-b", false, GenerationRecoveryPolicy.Auto))).Count.ShouldBe(1);
        var second = (await _nodeB.Runs.ClaimRunnableAsync(new RunClaimRequest("node-b", Lease, 10), _ => new ClaimChoice(true, ContinuationModes.Prefill))).Single();
        second.Lease.FencingToken.ShouldBeGreaterThan(first.Lease.FencingToken);
        var before = (await _nodeA.Generations.FindAsync(session.Id, null))!;

        var ex = await Should.ThrowAsync<LeaseLostException>(() => _nodeA.Runs.CommitAsync(
            [new ChunkAppend(session.Id, first.Lease.FencingToken, before.LastSeq + 1, " stale")],
            [new RunFinish(session.Id, first.Lease.FencingToken, GenerationCommand.Complete, before.LastSeq + 1)]));

        ex.SessionIds.ShouldBe([session.Id]);
        var after = (await _nodeA.Generations.FindAsync(session.Id, null))!;
        after.Output.ShouldBe("Hello");
        after.LastSeq.ShouldBe(before.LastSeq);
        after.Version.ShouldBe(before.Version);
        after.Status.ShouldBe(GenerationStatus.Running);
    }

    [Fact(Timeout = 60_000)]
    public async Task Commit_ManySessionsOneGroupCommit_OutputAndLogExactThenComplete()
    {
        var sessions = new List<GenerationSession>();
        for (var i = 0; i < 200; i++)
        {
            sessions.Add(await CreateAsync($"many{i:D3}"));
        }

        var claims = await _nodeA.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 500), _ => new ClaimChoice(true));
        claims.Count.ShouldBe(200);
        var chunks = new List<ChunkAppend>();
        foreach (var claim in claims)
        {
            var first = claim.Change.Session.LastSeq + 1;
            for (var k = 0; k < 20; k++)
            {
                chunks.Add(new ChunkAppend(claim.Change.Session.Id, claim.Lease.FencingToken, first + k, $"[{claim.Change.Session.Id}:{k}]"));
            }
        }

        // Interleaved the way the writer receives them: one chunk of every session in turn.
        var interleaved = chunks.OrderBy(c => c.Seq).ThenBy(c => c.SessionId, StringComparer.Ordinal).ToList();
        var finishes = claims.Select(c => new RunFinish(c.Change.Session.Id, c.Lease.FencingToken, GenerationCommand.Complete, c.Change.Session.LastSeq + 20, FinishReason: "stop")).ToList();

        var changes = await _nodeA.Runs.CommitAsync(interleaved, finishes);

        changes.Count.ShouldBe(200);
        changes.ShouldAllBe(c => c.Session.Status == GenerationStatus.Completed);
        foreach (var claim in claims)
        {
            var id = claim.Change.Session.Id;
            var expected = string.Concat(Enumerable.Range(0, 20).Select(k => $"[{id}:{k}]"));
            var stored = (await _nodeB.Generations.FindAsync(id, null))!;
            stored.Output.ShouldBe(expected);
            stored.Usage.OutputTokens.ShouldBe(20);
            var log = (await _nodeB.Generations.ReadLogAsync(id, null, 0, 1000))!;
            string.Concat(log.Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)).ShouldBe(expected);
            log.Select(e => e.Seq).ShouldBe(Enumerable.Range(1, log.Count).Select(i => (long)i));
            log[^1].StatusChange!.Status.ShouldBe(GenerationStatus.Completed);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Commit_ChunksAfterAGap_SkippedAndCompleteBecomesInterrupt()
    {
        var session = await CreateAsync("gap");
        var claim = (await _nodeA.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), _ => new ClaimChoice(true))).Single();
        var next = claim.Change.Session.LastSeq + 1;

        var changes = await _nodeA.Runs.CommitAsync(
            [new ChunkAppend(session.Id, claim.Lease.FencingToken, next + 1, "after a lost chunk")],
            [new RunFinish(session.Id, claim.Lease.FencingToken, GenerationCommand.Complete, next + 1)]);

        changes.Single().Session.Status.ShouldBe(GenerationStatus.Queued);
        changes.Single().Session.Output.ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task Recover_TakesExpiredLeasesLeavesLiveOnes_AndANodeTakesItsOwnBackAtOnce()
    {
        await CreateAsync("expired");
        await CreateAsync("live");
        await CreateAsync("own");
        await _nodeA.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 1), _ => new ClaimChoice(true));
        _time.Advance(TimeSpan.FromSeconds(6));
        await _nodeB.Runs.ClaimRunnableAsync(new RunClaimRequest("node-b", Lease, 1), _ => new ClaimChoice(true));
        await _nodeA.Runs.ClaimRunnableAsync(new RunClaimRequest("node-c", Lease, 1), _ => new ClaimChoice(true));
        _time.Advance(TimeSpan.FromSeconds(6)); // node-a's lease (from t=0) expired; node-b's and node-c's (t=6) live

        var recovered = await _nodeB.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-b", false, GenerationRecoveryPolicy.Manual));

        recovered.Select(c => c.Session.Id).ShouldBe(["gen_expired"]);
        recovered[0].Session.Status.ShouldBe(GenerationStatus.Paused);
        recovered[0].Session.PauseReason.ShouldBe("interrupted");
        (await _nodeA.Runs.RenewLeasesAsync("node-b", Lease)).Select(l => l.SessionId).ShouldBe(["gen_live"]);

        // node-c restarts: it takes its own lease back at once, though it has not expired; node-b's stays.
        var own = await _nodeA.Runs.RecoverAbandonedAsync(new RecoveryRequest("node-c", true, GenerationRecoveryPolicy.Auto));

        own.Select(c => c.Session.Id).ShouldBe(["gen_own"]);
        own[0].Session.Status.ShouldBe(GenerationStatus.Queued);
        (await _nodeA.Generations.FindAsync("gen_live", null))!.Status.ShouldBe(GenerationStatus.Running);
    }

    [Fact(Timeout = 60_000)]
    public async Task Create_FiveConcurrentStartsWithOneIdempotencyKey_OneSession()
    {
        var stores = new[] { _nodeA, _nodeB, _nodeA, _nodeB, _nodeA };
        var results = await Task.WhenAll(stores.Select((store, i) => Task.Run(() => store.Generations.CreateAsync(
            NewSession($"idem{i}", idempotencyKey: "key-1", requestHash: "same"), new Actor("alice")))));

        results.Select(r => r.Change.Session.Id).Distinct().Count().ShouldBe(1);
        results.Count(r => r.Created).ShouldBe(1);
        ((long)(await _db.ScalarAsync("SELECT count(*) FROM generation_sessions"))!).ShouldBe(1);
        await Should.ThrowAsync<SessionConflictException>(() => _nodeB.Generations.CreateAsync(
            NewSession("idem-other", idempotencyKey: "key-1", requestHash: "different"), new Actor("alice")));
    }

    [Fact(Timeout = 60_000)]
    public async Task Control_AuditWriteFails_StatusAndLogUnchanged()
    {
        var session = await CreateAsync("atomic");
        await _db.ScalarAsync("""
            CREATE FUNCTION fail_pause_audit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.action = 'pause' THEN RAISE EXCEPTION 'injected audit failure'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER fail_pause_audit BEFORE INSERT ON session_events FOR EACH ROW EXECUTE FUNCTION fail_pause_audit();
            """);

        await Should.ThrowAsync<Exception>(() => _nodeA.Generations.ApplyControlAsync(session.Id, null, GenerationCommand.Pause("x"), new Actor("alice"), null));

        var after = (await _nodeA.Generations.FindAsync(session.Id, null))!;
        after.Status.ShouldBe(GenerationStatus.Queued);
        after.DesiredState.ShouldBe(GenerationDesiredState.Running);
        after.Version.ShouldBe(session.Version);
        (await _nodeA.Generations.ReadLogAsync(session.Id, null, 0, 100))!.Count.ShouldBe(1);
    }

    [Fact(Timeout = 60_000)]
    public async Task Signals_PublishedOnOneNode_WakeASubscriberOnTheOther()
    {
        await ((PostgresChangeSignals)_nodeA.Signals).Listening;
        using var session = _nodeA.Signals.Subscribe("gen_signalled");
        using var nodeWide = _nodeA.Signals.Subscribe(null);

        await _nodeB.Signals.PublishAsync(new ChangeSignal(ChangeKind.Log, "gen_signalled"));
        await _nodeB.Signals.PublishAsync(new ChangeSignal(ChangeKind.Runnable, "gen_other"));

        await session.WaitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await nodeWide.WaitAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact(Timeout = 60_000)]
    public async Task CreateClaimCommit_OfManySessions_AFixedNumberOfStatementsNotOnePerSession()
    {
        // Round trips are what bounds a PostgreSQL group commit on a fast disk: a create is one statement, a claim of
        // many sessions and a commit of their chunks and endings a fixed number of round trips (Npgsql traces each
        // command or batch it sends as one activity), however many sessions they hold.
        using var statements = new StatementCounter(_db.Name);
        await CreateAsync("trips000");
        statements.Take().ShouldBe(1, "a create is one statement");
        for (var i = 1; i < 50; i++)
        {
            await CreateAsync($"trips{i:D3}");
        }

        statements.Take();
        var claims = await _nodeA.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 100), _ => new ClaimChoice(true));
        claims.Count.ShouldBe(50);
        statements.Take().ShouldBe(2, "the claim's SELECT, then every claim in one batch");

        var chunks = claims.SelectMany(c => Enumerable.Range(1, 3).Select(k => new ChunkAppend(c.Change.Session.Id, c.Lease.FencingToken, c.Change.Session.LastSeq + k, $"<{k}>"))).ToList();
        var finishes = claims.Select(c => new RunFinish(c.Change.Session.Id, c.Lease.FencingToken, GenerationCommand.Complete, c.Change.Session.LastSeq + 3, FinishReason: "stop")).ToList();
        var changes = await _nodeA.Runs.CommitAsync(chunks, finishes);

        statements.Take().ShouldBe(3, "the fence check, the chunks with the rows after them, every ending in one batch");
        changes.Count.ShouldBe(50);
        changes.ShouldAllBe(c => c.Session.Status == GenerationStatus.Completed && c.Session.Output == "<1><2><3>");
        var audit = await _nodeB.Audit.ReadAuditAsync(SessionKind.Generation, claims[^1].Change.Session.Id);
        audit.Events.Select(e => e.Action).ShouldBe(["create", "claim", "complete"], ignoreOrder: true);
    }

    [Fact(Timeout = 60_000)]
    public async Task Commit_LongRunInSmallCommits_OutputRewrittenAtFoldsOnlyNotByEveryCommit()
    {
        // A trigger records every UPDATE that changes a session's stored output: the real statements, in the real database.
        await _db.ScalarAsync("""
            CREATE TABLE test_output_rewrites (n bigserial PRIMARY KEY, session_id text, from_seq bigint, to_seq bigint, added int);
            CREATE FUNCTION test_count_output_rewrites() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO test_output_rewrites (session_id, from_seq, to_seq, added)
                VALUES (NEW.id, OLD.last_seq, NEW.last_seq, length(NEW.output) - length(OLD.output));
                RETURN NULL;
            END $$;
            CREATE TRIGGER test_count_output_rewrites AFTER UPDATE OF output ON generation_sessions
                FOR EACH ROW WHEN (NEW.output IS DISTINCT FROM OLD.output) EXECUTE FUNCTION test_count_output_rewrites();
            """);
        await CreateAsync("long");
        var claim = (await _nodeA.Runs.ClaimRunnableAsync(new RunClaimRequest("node-a", Lease, 10), _ => new ClaimChoice(true))).Single();
        var token = claim.Lease.FencingToken;
        var seq = claim.Change.Session.LastSeq;
        var expected = new System.Text.StringBuilder();

        // 600 chunks of 50 characters in 30 commits: a 30 kB output, stored out of line (TOAST) once past ~2 kB.
        for (var commit = 0; commit < 30; commit++)
        {
            var appends = Enumerable.Range(0, 20).Select(i => new ChunkAppend("gen_long", token, ++seq, $"[{commit:D2}.{i:D2}]".PadRight(50, '~'))).ToList();
            var finishes = commit == 29 ? [new RunFinish("gen_long", token, GenerationCommand.Complete, seq, FinishReason: "stop")] : Array.Empty<RunFinish>();
            await _nodeA.Runs.CommitAsync(appends, finishes);
            expected.Append(string.Concat(appends.Select(a => a.Text)));
        }

        var done = (await _nodeB.Generations.FindAsync("gen_long", null))!;
        done.Status.ShouldBe(GenerationStatus.Completed);
        done.Output.ShouldBe(expected.ToString());
        var rewrites = new List<(long From, long To, int Added)>();
        await using (var connection = new Npgsql.NpgsqlConnection(_db.ConnectionString))
        {
            await connection.OpenAsync();
            await using var read = new Npgsql.NpgsqlCommand("SELECT from_seq, to_seq, added FROM test_output_rewrites WHERE session_id = 'gen_long' ORDER BY n", connection);
            await using var reader = await read.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rewrites.Add((reader.GetInt64(0), reader.GetInt64(1), reader.GetInt32(2)));
            }
        }

        // Folded once 256 events waited (twice in 600) and at the ending; one rewrite per commit (30) before migration 0015.
        rewrites.Count.ShouldBe(3, string.Join("; ", rewrites));
        rewrites.Sum(r => r.Added).ShouldBe(done.Output.Length, "together the folds add the whole text, each chunk once");
        rewrites[^1].To.ShouldBe(done.LastSeq, "the ending folds the rest");
        ((long)(await _db.ScalarAsync("SELECT output_seq - last_seq FROM generation_sessions WHERE id = 'gen_long'"))!).ShouldBe(0, "a finished run is folded whole");
    }

    [Fact(Timeout = 30_000)]
    public async Task Migrate_SessionsTable_LeavesRoomOnEveryPageForItsRowsNextVersions()
    {
        // Every group commit, lease renewal and transition updates a running session's row: with room on its page the
        // new version stays there (a HOT update, no index writes), which kept the table at 18 MB instead of 152 MB with
        // 1,000 sessions streaming (migration 0015, BENCHMARKS.md).
        var options = (string[]?)await _db.ScalarAsync("SELECT reloptions FROM pg_class WHERE oid = 'generation_sessions'::regclass");

        options.ShouldNotBeNull().ShouldContain("fillfactor=50");
    }

    private async Task<GenerationSession> CreateAsync(string name) =>
        (await _nodeA.Generations.CreateAsync(NewSession(name), new Actor("alice"))).Change.Session;

    private static NewGeneration NewSession(string name, string? idempotencyKey = null, string? requestHash = null) => new(
        $"gen_{name}", "alice", "scripted", "scripted", [new GenerationMessage("user", "Hello " + name)], GenerationParameters.Default,
        null, null, idempotencyKey, requestHash);

    private sealed class ManualTime(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    /// <summary>Counts the commands and batches Npgsql sends to one database (its trace activities).</summary>
    private sealed class StatementCounter : IDisposable
    {
        private readonly ActivityListener _listener;
        private int _count;

        public StatementCounter(string database)
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name == "Npgsql",
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStopped = activity =>
                {
                    var name = activity.GetTagItem("db.namespace") ?? activity.GetTagItem("db.name");
                    var statement = activity.GetTagItem("db.query.text") ?? activity.GetTagItem("db.statement");
                    if (statement is not null && string.Equals(name as string, database, StringComparison.Ordinal))
                    {
                        Interlocked.Increment(ref _count);
                    }
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        /// <summary>The statements sent since the last call.</summary>
        public int Take() => Interlocked.Exchange(ref _count, 0);

        public void Dispose() => _listener.Dispose();
    }
}
