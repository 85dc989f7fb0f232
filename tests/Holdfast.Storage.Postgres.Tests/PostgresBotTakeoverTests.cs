using System.Reflection;
using Holdfast.Bots;
using Holdfast.Cluster;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Microsoft.Extensions.Options;

namespace Holdfast.Storage.Postgres.Tests;

/// <summary>
/// Bots across nodes, at the <see cref="BotManager"/> level: one manager per node, each on its own store instance of
/// one real PostgreSQL database (what a node of <c>holdfast serve</c> runs), under one clock. The takeover of a dead
/// node's bots is spread over the survivors by fair share; a bot parked <c>failed</c> lets go of its lease; a start
/// races neither with another node's takeover nor answers without the QR of the node that holds the bot.
/// </summary>
public sealed class PostgresBotTakeoverTests : IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(10);
    private static readonly Actor Tester = Actor.System("test");
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 12, 3, 1, 0, 0, TimeSpan.Zero));
    private readonly List<IAsyncDisposable> _disposables = [];
    private readonly BotAuthStateProtector _protector = new(new byte[32]);
    private TestDatabase _db = null!;

    private static BotOptions Options => new()
    {
        RestoreJitter = TimeSpan.Zero,
        RestoreConcurrency = 4,
        RestoreAttempts = 2,
        RestoreBackoff = TimeSpan.FromMilliseconds(10),
        RestoreMaxBackoff = TimeSpan.FromMilliseconds(10),
    };

    public async Task InitializeAsync()
    {
        _db = await TestPostgres.CreateDatabaseAsync();
        var first = Store();
        await first.Administration.MigrateAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var disposable in _disposables)
        {
            await disposable.DisposeAsync();
        }

        _protector.Dispose();
        await _db.DisposeAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task TakeOver_DeadNodesBots_SpreadOverTheTwoSurvivors_EachBotByExactlyOne()
    {
        const int bots = 12;
        var dead = Node("node-dead", out var deadStore);
        var b = Node("node-b", out var storeB);
        var c = Node("node-c", out var storeC);
        await HeartbeatAsync(deadStore, "node-dead");
        for (var i = 0; i < bots; i++)
        {
            await dead.StartSessionAsync(new StartBotSession($"bot-{i:D2}", BridgeBotConnector.TypeName), Tester);
        }

        // node-dead stops renewing (killed); once its leases and heartbeat are older than a lease, the others take over.
        _time.Advance(Lease + TimeSpan.FromSeconds(1));
        await HeartbeatAsync(storeB, "node-b");
        await HeartbeatAsync(storeC, "node-c");

        // One after the other: without a fair share the first survivor would take every bot.
        var takenByB = await b.TakeOverAbandonedAsync(Options);
        var takenByC = await c.TakeOverAbandonedAsync(Options);

        takenByB.ShouldBe(bots / 2);
        takenByC.ShouldBe(bots / 2);
        var holders = new List<string?>();
        for (var i = 0; i < bots; i++)
        {
            var id = $"bot-{i:D2}";
            holders.Add((await storeB.Bots.FindAsync(id))!.Holder?.NodeId);
            (b.IsConnected(id) ^ c.IsConnected(id)).ShouldBeTrue($"{id} is run by exactly one survivor");
        }

        holders.Count(h => h == "node-b").ShouldBe(bots / 2);
        holders.Count(h => h == "node-c").ShouldBe(bots / 2);
        (await b.TakeOverAbandonedAsync(Options)).ShouldBe(0, "nothing is left over");
    }

    [Fact(Timeout = 60_000)]
    public async Task Restore_ConnectKeepsFailing_ParkedFailed_LeaseReleased_AnotherNodeStartsIt()
    {
        var a = Node("node-a", out var storeA, new FailingConnector());
        var b = Node("node-b", out _, new WorkingConnector());
        await storeA.Bots.StartOrReactivateAsync(new StartBotSession("broken", FailingConnector.TypeName), Tester);

        await a.RestoreActiveSessionsAsync(Options);
        var parked = (await storeA.Bots.FindAsync("broken"))!;
        var renewed = await a.RenewLeasesAsync();
        var started = await b.StartSessionAsync(new StartBotSession("broken", FailingConnector.TypeName), Tester);

        parked.Connection!.State.ShouldBe(BotConnectionState.Failed);
        parked.Holder.ShouldBeNull("a parked bot is not pinned to the node that failed to connect it");
        renewed.ShouldBeEmpty();
        b.IsConnected("broken").ShouldBeTrue("a later start on another node takes it");
        started.Session.Holder!.NodeId.ShouldBe("node-b");
    }

    [Fact(Timeout = 60_000)]
    public async Task Start_AnotherNodesTakeoverRunsBetweenTheStartAndItsConnect_TheStartingNodeKeepsItAndAnswersWithItsQr()
    {
        var b = Node("node-b", out _);
        var takenByB = -1;
        var a = Node("node-a", out _, hook: async () => takenByB = await b.TakeOverAbandonedAsync(Options));

        var started = await a.StartSessionAsync(new StartBotSession("wa-1", WebBotConnector.TypeName), Tester);

        takenByB.ShouldBe(0, "the started session was never unheld");
        a.IsConnected("wa-1").ShouldBeTrue();
        b.IsConnected("wa-1").ShouldBeFalse();
        started.Session.QrData.ShouldNotBeNullOrEmpty();
        started.Session.Holder!.NodeId.ShouldBe("node-a");
    }

    [Fact(Timeout = 60_000)]
    public async Task Start_HeldByANodeStillConnectingIt_AnswersWithTheHoldersQr()
    {
        var a = Node("node-a", out var storeA);
        await storeA.Bots.StartOrReactivateAsync(new StartBotSession("wa-1", WebBotConnector.TypeName), Tester);

        // node-b took it over and is connecting it: its QR is written a moment after this start asks.
        var lease = (await storeA.Bots.ClaimLeaseAsync("wa-1", "node-b", Lease))!;
        var start = a.StartSessionAsync(new StartBotSession("wa-1", WebBotConnector.TypeName), Tester);
        await Task.Delay(300);
        await storeA.Bots.SetQrAsync("wa-1", "http://127.0.0.1:7400/pair/wa-1?token=from-b", Tester, lease);
        await storeA.Bots.SetConnectionStateAsync("wa-1", BotConnectionState.AwaitingQr, null, null, Tester, lease);
        var started = await start;

        started.Session.QrData.ShouldBe("http://127.0.0.1:7400/pair/wa-1?token=from-b");
        started.Session.Holder!.NodeId.ShouldBe("node-b");
        a.IsConnected("wa-1").ShouldBeFalse();
    }

    private PostgresStore Store()
    {
        var store = new PostgresStore(_db.Uri, _time);
        _disposables.Add(store);
        return store;
    }

    private BotManager Node(string nodeId, out PostgresStore store, IBotConnector? extra = null, Func<Task>? hook = null)
    {
        store = Store();
        var options = Microsoft.Extensions.Options.Options.Create(new BotOptions());
        var web = new WebBotConnector(options, _time);
        _disposables.Add(new Disposer(web.Dispose));
        var connectors = new List<IBotConnector> { web, new BridgeBotConnector(store.Signals) };
        if (extra is not null)
        {
            connectors.Add(extra);
        }

        var bots = hook is null ? store.Bots : StartHook.Wrap(store.Bots, hook);
        var manager = new BotManager(
            bots,
            connectors,
            _protector,
            null,
            _time,
            signals: store.Signals,
            identity: new NodeIdentity(Microsoft.Extensions.Options.Options.Create(new ClusterOptions { NodeId = nodeId }), Microsoft.Extensions.Options.Options.Create(new StorageOptions())),
            cluster: Microsoft.Extensions.Options.Options.Create(new ClusterOptions { NodeId = nodeId, LeaseDuration = Lease }));
        _disposables.Add(new Disposer(manager.Dispose));
        return manager;
    }

    /// <summary>A node's heartbeat, as its generation runner's renewal writes it.</summary>
    private static Task HeartbeatAsync(PostgresStore store, string nodeId) => store.Runs.RenewLeasesAsync(nodeId, Lease);

    private sealed class Disposer(Action dispose) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A bot type whose connection never comes up on this node.</summary>
    private sealed class FailingConnector : IBotConnector
    {
        public const string TypeName = "flaky";

        public string BotType => TypeName;

        public Task ConnectAsync(BotSession session, IBotSessionCallbacks callbacks, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("the device is unreachable from this node");

        public Task DisconnectAsync(string sessionId, CancellationToken cancellationToken = default) => Task.CompletedTask;
    }

    /// <summary>The same bot type on a node where it connects.</summary>
    private sealed class WorkingConnector : IBotConnector
    {
        public string BotType => FailingConnector.TypeName;

        public Task ConnectAsync(BotSession session, IBotSessionCallbacks callbacks, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task DisconnectAsync(string sessionId, CancellationToken cancellationToken = default) => Task.CompletedTask;
    }

    /// <summary>The node's bot store, with <c>hook</c> run right after a start's write committed (before the start goes on).</summary>
    public class StartHook : DispatchProxy
    {
        private IBotStore _inner = null!;
        private Func<Task> _hook = null!;

        public static IBotStore Wrap(IBotStore inner, Func<Task> hook)
        {
            var proxy = Create<IBotStore, StartHook>();
            var self = (StartHook)(object)proxy;
            self._inner = inner;
            self._hook = hook;
            return proxy;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            ArgumentNullException.ThrowIfNull(targetMethod);
            var result = targetMethod.Invoke(_inner, args);
            return targetMethod.Name == nameof(IBotStore.StartOrReactivateAsync) ? AfterAsync((Task<BotStartResult>)result!) : result;
        }

        private async Task<BotStartResult> AfterAsync(Task<BotStartResult> start)
        {
            var result = await start;
            await _hook();
            return result;
        }
    }

    private sealed class ManualTime(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
