using System.Net;
using System.Text;
using Holdfast.Client.Models;
using Holdfast.Client.Streaming;
using Holdfast.TestHelpers;

namespace Holdfast.Client.Tests.EndToEnd;

/// <summary>The client against the real Holdfast host: every call, over the socket and over TCP with keys.</summary>
public sealed class ClientEndToEndTests
{
    private static CreateGenerationRequest Request(string prompt, int? maxTokens = null) =>
        new("scripted", [new InputMessage("user", prompt)], Parameters: maxTokens is null ? null : new GenerationParameters(MaxTokens: maxTokens));

    [Fact(Timeout = 120_000)]
    public async Task Generations_FullLifecycleOverTheSocket()
    {
        await using var host = await HoldfastHost.StartAsync();
        using var client = host.Socket();

        var created = await client.CreateGenerationAsync(Request("Lifecycle", 60), idempotencyKey: "lifecycle-1");
        var again = await client.CreateGenerationAsync(Request("Lifecycle", 60), idempotencyKey: "lifecycle-1");
        again.Id.ShouldBe(created.Id);

        var text = new StringBuilder();
        GenerationDoneEvent? done = null;
        await foreach (var e in client.FollowAsync(created.Id))
        {
            if (e is GenerationChunkEvent chunk)
            {
                text.Append(chunk.Text);
            }

            done = e as GenerationDoneEvent;
        }

        done.ShouldNotBeNull().Status.ShouldBe(GenerationStatus.Completed);
        var finished = await client.GetGenerationAsync(created.Id);
        finished.Status.ShouldBe(GenerationStatus.Completed);
        text.ToString().ShouldBe(finished.Output);
        (await client.ListGenerationsAsync(GenerationStatus.Completed)).Items.ShouldContain(g => g.Id == created.Id);
        (await client.ListGenerationsAsync(GenerationStatus.Running)).Items.ShouldNotContain(g => g.Id == created.Id);
        var log = await client.GetGenerationLogAsync(created.Id);
        string.Concat(log.Items.Where(e => e.Type == "chunk").Select(e => e.Text)).ShouldBe(finished.Output);
        (await client.GetGenerationEventsAsync(created.Id)).Items.ShouldNotBeEmpty();

        var fork = await client.ForkGenerationAsync(created.Id);
        fork.Id.ShouldNotBe(created.Id);
        fork.ForkedFrom.ShouldBe(created.Id);

        var conflict = await Should.ThrowAsync<HoldfastApiException>(() => client.ResumeGenerationAsync(created.Id));
        conflict.IsConflict.ShouldBeTrue();
        conflict.Detail.ShouldNotBeNullOrWhiteSpace();

        await client.DeleteGenerationAsync(created.Id);
        (await Should.ThrowAsync<HoldfastApiException>(() => client.GetGenerationAsync(created.Id))).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact(Timeout = 120_000)]
    public async Task PauseResumeCancel_WithWait_ReturnWhenTheRunnerGotThere()
    {
        await using var host = await HoldfastHost.StartAsync(tokensPerSecond: 20);
        using var client = host.Socket();
        var created = await client.CreateGenerationAsync(Request("Control me", 2000));
        await Poll.UntilAsync(async () => (await client.GetGenerationAsync(created.Id)).Status == GenerationStatus.Running, "running");

        var paused = await client.PauseGenerationAsync(created.Id, "test", TimeSpan.FromSeconds(10));
        paused.Status.ShouldBe(GenerationStatus.Paused);
        var resumed = await client.ResumeGenerationAsync(created.Id, wait: TimeSpan.FromSeconds(10));
        resumed.Status.ShouldBe(GenerationStatus.Running);
        var cancelled = await client.CancelGenerationAsync(created.Id, "done testing", TimeSpan.FromSeconds(10));
        cancelled.Status.ShouldBe(GenerationStatus.Cancelled);

        var audit = await client.GetGenerationEventsAsync(created.Id, limit: 100);
        audit.Items.ShouldContain(e => e.Detail != null && e.Detail.Contains("test", StringComparison.Ordinal));
    }

    [Fact(Timeout = 120_000)]
    public async Task FollowAsync_HostRestartedMidStream_NoGapNoDuplicate()
    {
        await using var host = await HoldfastHost.StartAsync(tokensPerSecond: 40);
        using var client = host.Socket();
        var created = await client.CreateGenerationAsync(Request("Restart under me", 200));
        var chunks = new List<GenerationChunkEvent>();
        var reconnects = 0;
        var options = new FollowOptions { InitialReconnectDelay = TimeSpan.FromMilliseconds(50), OnReconnecting = (_, _) => Interlocked.Increment(ref reconnects) };
        var follow = Task.Run(async () =>
        {
            await foreach (var e in client.FollowAsync(created.Id, 0, options))
            {
                if (e is GenerationChunkEvent chunk)
                {
                    lock (chunks)
                    {
                        chunks.Add(chunk);
                    }
                }
            }
        });
        await Poll.UntilAsync(() => Task.FromResult(Count(chunks) >= 10), "10 chunks before the restart");

        await host.RestartAsync();
        await follow.WaitAsync(TimeSpan.FromSeconds(90));

        var finished = await client.GetGenerationAsync(created.Id);
        finished.Status.ShouldBe(GenerationStatus.Completed);
        string.Concat(chunks.Select(c => c.Text)).ShouldBe(finished.Output);
        chunks.Select(c => c.Seq).ShouldBeInOrder(SortDirection.Ascending);
        chunks.Select(c => c.Seq).Distinct().Count().ShouldBe(chunks.Count);
        reconnects.ShouldBeGreaterThan(0);
    }

    [Fact(Timeout = 120_000)]
    public async Task Tcp_KeysAndOwnership_OtherUsersSessionIsNotFound()
    {
        await using var host = await HoldfastHost.StartAsync();
        using var alice = await host.TcpAsAsync("alice");
        using var bob = await host.TcpAsAsync("bob");
        using var admin = await host.TcpAsAsync("root", admin: true);
        using var anonymous = new HoldfastClient(host.Url);

        var created = await alice.CreateGenerationAsync(Request("Alice's secret"));

        created.Owner.ShouldBe("alice");
        (await Should.ThrowAsync<HoldfastApiException>(() => bob.GetGenerationAsync(created.Id))).IsNotFound.ShouldBeTrue();
        (await Should.ThrowAsync<HoldfastApiException>(() => bob.PauseGenerationAsync(created.Id))).IsNotFound.ShouldBeTrue();
        (await bob.ListGenerationsAsync()).Items.ShouldNotContain(g => g.Id == created.Id);
        (await admin.GetGenerationAsync(created.Id)).Owner.ShouldBe("alice");
        (await Should.ThrowAsync<HoldfastApiException>(() => anonymous.ListGenerationsAsync())).Status.ShouldBe(HttpStatusCode.Unauthorized);
        (await Should.ThrowAsync<HoldfastApiException>(() => bob.ListKeysAsync())).Status.ShouldBe(HttpStatusCode.Forbidden);
        var keys = await admin.ListKeysAsync();
        keys.Select(k => k.User).ShouldContain("alice");
        var bobKey = keys.Single(k => k.User == "bob");
        (await admin.RevokeKeyAsync(bobKey.Id)).RevokedAt.ShouldNotBeNull();
        (await Should.ThrowAsync<HoldfastApiException>(() => bob.ListGenerationsAsync())).Status.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact(Timeout = 60_000)]
    public async Task CreateGeneration_InvalidInput_ProblemDetailBecomesTheMessage()
    {
        await using var host = await HoldfastHost.StartAsync();
        using var client = host.Socket();

        var error = await Should.ThrowAsync<HoldfastApiException>(() => client.CreateGenerationAsync(new CreateGenerationRequest("", [new InputMessage("user", "x")])));

        error.Status.ShouldBe(HttpStatusCode.BadRequest);
        error.Message.ShouldContain("model");
    }

    [Fact(Timeout = 120_000)]
    public async Task Bots_StartQrEndAndEvents()
    {
        await using var host = await HoldfastHost.StartAsync();
        using var client = host.Socket();

        var started = await client.StartBotAsync("client-bot", "web");
        started.Status.ShouldBe(BotStatus.Active);
        var withQr = await Poll.UntilAsync(() => client.GetBotAsync("client-bot"), b => b.QrData is not null, "the web bot shows a QR code");
        var png = await client.GetBotQrAsync("client-bot", BotQrFormat.Png);
        var svg = Encoding.UTF8.GetString(await client.GetBotQrAsync("client-bot", BotQrFormat.Svg));
        var text = Encoding.UTF8.GetString(await client.GetBotQrAsync("client-bot", BotQrFormat.Text));
        (await client.ListBotsAsync(BotStatus.Active)).Items.ShouldContain(b => b.SessionId == "client-bot");
        var ended = await client.EndBotAsync("client-bot");
        var events = await client.GetBotEventsAsync("client-bot");
        var noQr = await Should.ThrowAsync<HoldfastApiException>(() => client.GetBotQrAsync("client-bot"));

        withQr.QrData.ShouldNotBeNullOrEmpty();
        png.Take(4).ShouldBe(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' });
        svg.ShouldContain("<svg");
        text.ShouldContain("█");
        ended.Status.ShouldBe(BotStatus.Inactive);
        ended.QrData.ShouldBeNull();
        events.Items.Count.ShouldBeGreaterThanOrEqualTo(2);
        noQr.IsNotFound.ShouldBeTrue();
    }
    [Fact(Timeout = 120_000)]
    public async Task AssignBotOwner_AdminGivesTheBotToAUser_NonAdminIsRefused()
    {
        await using var host = await HoldfastHost.StartAsync();
        using var local = host.Socket();
        using var dave = await host.TcpAsAsync("dave");
        await local.StartBotAsync("assign-bot", "bridge");

        var refused = await Should.ThrowAsync<HoldfastApiException>(() => dave.AssignBotOwnerAsync("assign-bot", "dave"));
        var assigned = await local.AssignBotOwnerAsync("assign-bot", "dave");

        refused.Status.ShouldBe(HttpStatusCode.Forbidden);
        assigned.Owner.ShouldBe("dave");
        (await dave.GetBotAsync("assign-bot")).Owner.ShouldBe("dave");
    }


    private static int Count<T>(List<T> items)
    {
        lock (items)
        {
            return items.Count;
        }
    }
}
