using Holdfast.Bots;
using Holdfast.TestHelpers;
using Holdfast.Tests.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Holdfast.Tests.Bots;

/// <summary>Restore on start, gently: bounded concurrency, retries with backoff, nothing deleted.</summary>
[Collection(ResourceHeavyCollection.Name)]
public sealed class BotRestoreTests
{
    private static readonly Dictionary<string, string?> Settings = new(StringComparer.Ordinal)
    {
        ["Bots:PublicBaseUrl"] = "http://holdfast.test:7400/",
        ["Bots:RestoreOnStart"] = "false",
    };

    [Fact(Timeout = 120_000)]
    public async Task RestoreActiveSessionsAsync_200Sessions_NeverMoreThanTheBoundAtOnce_FlakyOnesRetried_BrokenOneKept()
    {
        using var temp = new TempDirectory();
        var ids = Enumerable.Range(0, 200).Select(i => $"restore-{i:D3}").ToList();
        using (var host = TestHosts.BuildCoreHost(temp.Path, Settings, services => services.AddHoldfastBotConnector<CountingConnector>(CountingConnector.TypeName)))
        {
            await host.StartAsync();
            var manager = host.Services.GetRequiredService<BotManager>();
            // Sessions ending in 7 fail their first connect here too; they are stored active all the same.
            await Task.WhenAll(ids.Append("broken").Select(async id =>
            {
                try
                {
                    await manager.StartSessionAsync(new(id, CountingConnector.TypeName));
                }
                catch (InvalidOperationException)
                {
                }
            }));
            await host.StopAsync();
        }

        using (var host = TestHosts.BuildCoreHost(temp.Path, Settings, services => services.AddHoldfastBotConnector<CountingConnector>(CountingConnector.TypeName)))
        {
            await host.StartAsync();
            var manager = host.Services.GetRequiredService<BotManager>();
            var connector = host.Services.GetRequiredService<CountingConnector>();
            var options = new BotOptions { RestoreConcurrency = 4, RestoreJitter = TimeSpan.FromMilliseconds(5), RestoreAttempts = 3, RestoreBackoff = TimeSpan.FromMilliseconds(50) };

            var restored = await manager.RestoreActiveSessionsAsync(options);

            restored.ShouldBe(200);
            connector.MaxConcurrent.ShouldBeLessThanOrEqualTo(4);
            connector.MaxConcurrent.ShouldBeGreaterThan(1, "restore ran sessions side by side");
            ids.ShouldAllBe(id => manager.IsConnected(id));
            connector.Attempts("restore-007").ShouldBe(2, "a flaky session is tried again");
            connector.Attempts("broken").ShouldBe(3, "up to RestoreAttempts");
            var broken = await manager.GetAsync("broken");
            broken.Status.ShouldBe(BotSessionStatus.Active);
            broken.Connection.ShouldNotBeNull().State.ShouldBe(BotConnectionState.Failed, "a looping session is parked");
            broken.Connection.Reason.ShouldBe("restore: connecting failed 3 times; start it again to retry");
            manager.IsConnected("broken").ShouldBeFalse();
            (await manager.ListAsync(new BotListQuery(Limit: 1000))).Items.Count.ShouldBe(201, "nothing is deleted");

            // The next restore skips the parked session; a manual start tries it again.
            await manager.RestoreActiveSessionsAsync(options);
            connector.Attempts("broken").ShouldBe(3);
            await host.StopAsync();
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task RestoreActiveSessionsAsync_SkipsLoggedOutAndFailedSessions_KeepingThem()
    {
        using var temp = new TempDirectory();
        using (var host = TestHosts.BuildCoreHost(temp.Path, Settings))
        {
            await host.StartAsync();
            var manager = host.Services.GetRequiredService<BotManager>();
            foreach (var id in new[] { "ok", "out", "broken" })
            {
                await manager.StartSessionAsync(new(id, BridgeBotConnector.TypeName));
            }

            await manager.ReportConnectionAsync("ok", BotConnectionState.Connected, null, null);
            await manager.ReportConnectionAsync("out", BotConnectionState.LoggedOut, "logged out on the phone", 401);
            await manager.ReportConnectionAsync("broken", BotConnectionState.Failed, "bad credentials", null);
            await host.StopAsync();
        }

        using (var host = TestHosts.BuildCoreHost(temp.Path, Settings))
        {
            await host.StartAsync();
            var manager = host.Services.GetRequiredService<BotManager>();

            var restored = await manager.RestoreActiveSessionsAsync();

            restored.ShouldBe(1);
            host.Services.GetRequiredService<BridgeBotConnector>().ConnectedSessions.ShouldBe(["ok"]);
            (await manager.GetAsync("out")).ShouldSatisfyAllConditions(
                s => s.Status.ShouldBe(BotSessionStatus.Active),
                s => s.Connection.ShouldNotBeNull().State.ShouldBe(BotConnectionState.LoggedOut));
            (await manager.GetAsync("broken")).Connection.ShouldNotBeNull().State.ShouldBe(BotConnectionState.Failed);
            await host.StopAsync();
        }
    }

    [Theory]
    [InlineData("RestoreConcurrency", "0")]
    [InlineData("RestoreAttempts", "21")]
    [InlineData("RestoreJitter", "00:05:00")]
    [InlineData("RestoreMaxBackoff", "01:00:00")]
    public async Task Start_WithARestoreSettingOutOfRange_FailsNamingIt(string key, string value)
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, new Dictionary<string, string?>(Settings, StringComparer.Ordinal) { [$"Bots:{key}"] = value });

        var ex = await Should.ThrowAsync<OptionsValidationException>(() => host.StartAsync());

        ex.Message.ShouldContain($"Bots:{key}");
    }

    /// <summary>Counts concurrent connects; sessions ending in 7 fail their first connect, <c>broken</c> always fails.</summary>
    private sealed class CountingConnector : IBotConnector
    {
        public const string TypeName = "counting";

        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _attempts = new(StringComparer.Ordinal);
        private int _current;
        private int _max;

        public string BotType => TypeName;

        public int MaxConcurrent => Volatile.Read(ref _max);

        public int Attempts(string sessionId) => _attempts.GetValueOrDefault(sessionId);

        public async Task ConnectAsync(BotSession session, IBotSessionCallbacks callbacks, CancellationToken cancellationToken = default)
        {
            var now = Interlocked.Increment(ref _current);
            try
            {
                int seen;
                while (now > (seen = Volatile.Read(ref _max)) && Interlocked.CompareExchange(ref _max, now, seen) != seen)
                {
                }

                var attempt = _attempts.AddOrUpdate(session.SessionId, 1, (_, n) => n + 1);
                await Task.Delay(TimeSpan.FromMilliseconds(5), cancellationToken);
                if (session.SessionId == "broken" || (session.SessionId.EndsWith('7') && attempt == 1))
                {
                    throw new InvalidOperationException("the runtime is not reachable yet");
                }
            }
            finally
            {
                Interlocked.Decrement(ref _current);
            }
        }

        public Task DisconnectAsync(string sessionId, CancellationToken cancellationToken = default) => Task.CompletedTask;
    }
}
