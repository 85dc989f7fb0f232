using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.TestHelpers;
using Holdfast.Tests.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.Tests.Bots;

/// <summary>Many bot sessions at once through the real host.</summary>
[Collection(ResourceHeavyCollection.Name)]
public sealed class BotManagerLoadTests
{
    private static readonly Dictionary<string, string?> Settings = new(StringComparer.Ordinal)
    {
        ["Bots:PublicBaseUrl"] = "http://holdfast.test:7400/",
    };

    [Fact(Timeout = 120_000)]
    public async Task StartSessionAsync_200SessionsAtOnce_AllActiveWithOwnQrAndAudit()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, Settings);
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<BotManager>();
        var audit = host.Services.GetRequiredService<IAuditLog>();
        var ids = Enumerable.Range(0, 200).Select(i => $"many-{i:D3}").ToList();

        var results = await Task.WhenAll(ids.Select(id => Task.Run(() => manager.StartSessionAsync(new(id)))));
        await Task.WhenAll(ids.Select(id => Task.Run(() => manager.RecordMessageAsync(id, $"hi {id}"))));

        results.ShouldAllBe(r => r.Outcome == BotStartOutcome.Created);
        results.Select(r => r.Session.QrData).Distinct().Count().ShouldBe(200);
        var listed = new List<BotSession>();
        string? cursor = null;
        do
        {
            var page = await manager.ListAsync(new BotListQuery(BotSessionStatus.Active, After: cursor, Limit: 64));
            listed.AddRange(page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);

        listed.Select(s => s.SessionId).ShouldBe(ids);
        listed.ShouldAllBe(s => s.LastMessage == "hi " + s.SessionId && s.Version == 4);
        foreach (var id in ids.Take(10))
        {
            (await audit.ReadAuditAsync(SessionKind.Bot, id)).Events.Select(e => e.Action).Reverse()
                .ShouldBe(["bot.created", "bot.qr", "bot.connection", "bot.message"]);
        }

        await host.StopAsync();
    }

    [Fact(Timeout = 120_000)]
    public async Task RecordMessageAsync_1000ConcurrentMessagesWithShuffledTimes_NewestStaysLastMessage()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, Settings);
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<BotManager>();
        await manager.StartSessionAsync(new("forward", BridgeBotConnector.TypeName));
        var start = new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);
        var order = Enumerable.Range(0, 1000).ToArray();
        new Random(12).Shuffle(order);

        await Task.WhenAll(order.Select(i => Task.Run(() => manager.RecordMessageAsync("forward", $"message {i}", start.AddMilliseconds(i)))));

        var session = await manager.GetAsync("forward");
        session.LastMessage.ShouldBe("message 999");
        session.LastMessageAt.ShouldBe(start.AddMilliseconds(999));
        var older = await manager.RecordMessageAsync("forward", "late arrival", start.AddSeconds(-1));
        older.LastMessage.ShouldBe("message 999");
        older.Version.ShouldBe(session.Version);
        await host.StopAsync();
    }
}
