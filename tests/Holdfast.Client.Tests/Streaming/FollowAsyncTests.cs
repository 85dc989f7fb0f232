using System.Net;
using System.Text;
using Holdfast.Client.Models;
using Holdfast.Client.Streaming;
using Holdfast.TestHelpers;

namespace Holdfast.Client.Tests.Streaming;

public sealed class FollowAsyncTests
{
    private static readonly FollowOptions FastRetry = new()
    {
        InitialReconnectDelay = TimeSpan.FromMilliseconds(20),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(200),
        GiveUpAfter = TimeSpan.FromSeconds(20),
    };

    [Fact(Timeout = 30_000)]
    public async Task FollowAsync_UninterruptedStream_YieldsEveryChunkThenDone()
    {
        await using var server = await SseTestServer.StartAsync(new SseScript { TotalChunks = 10 });
        using var client = new HoldfastClient(server.Address);

        var events = await CollectAsync(client.FollowAsync(SseTestServer.GenerationId, 0, FastRetry));

        events.OfType<GenerationChunkEvent>().Select(c => c.Seq).ShouldBe(Enumerable.Range(1, 10).Select(i => (long)i));
        events[^1].ShouldBeOfType<GenerationDoneEvent>().Status.ShouldBe(GenerationStatus.Completed);
        server.Script.ConnectionCount.ShouldBe(1);
    }

    [Fact(Timeout = 30_000)]
    public async Task FollowAsync_ConnectionDroppedMidStream_ReconnectsFromLastSeqWithoutGapOrDuplicate()
    {
        var script = new SseScript { TotalChunks = 30, DropAfterEvents = { [1] = 7, [2] = 5, [3] = 1 } };
        await using var server = await SseTestServer.StartAsync(script);
        using var client = new HoldfastClient(server.Address);

        var events = await CollectAsync(client.FollowAsync(SseTestServer.GenerationId, 0, FastRetry));

        var chunks = events.OfType<GenerationChunkEvent>().ToList();
        chunks.Select(c => c.Seq).ShouldBe(Enumerable.Range(1, 30).Select(i => (long)i));
        string.Concat(chunks.Select(c => c.Text)).ShouldBe(ExpectedText(1, 30));
        events[^1].ShouldBeOfType<GenerationDoneEvent>();
        script.ConnectionCount.ShouldBe(4);
        string.Join(",", script.Requests.Select(r => $"{r.After}/{r.LastEventId}")).ShouldBe("0/,7/7,12/12,13/13");
        script.Requests.Select(r => r.After).ShouldBe(["0", "7", "12", "13"]);
    }

    [Fact(Timeout = 60_000)]
    public async Task FollowAsync_ServerStoppedAndRestartedOnSamePort_ContinuesAfterRestart()
    {
        var first = await SseTestServer.StartAsync(new SseScript { TotalChunks = 12, HangAfterSeq = 5 });
        var port = first.Port;
        using var client = new HoldfastClient(first.Address);
        var reconnects = 0;
        var options = new FollowOptions
        {
            InitialReconnectDelay = TimeSpan.FromMilliseconds(50),
            MaxReconnectDelay = TimeSpan.FromMilliseconds(300),
            GiveUpAfter = TimeSpan.FromSeconds(30),
            OnReconnecting = (_, _) => Interlocked.Increment(ref reconnects),
        };
        var received = new List<GenerationStreamEvent>();
        var follow = Task.Run(async () =>
        {
            await foreach (var e in client.FollowAsync(SseTestServer.GenerationId, 0, options))
            {
                lock (received)
                {
                    received.Add(e);
                }
            }
        });

        await first.Script.Hanging.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await Poll.UntilAsync(() => Task.FromResult(Count(received) >= 5), "the follower received the first 5 chunks");
        await first.DisposeAsync();
        await Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref reconnects) >= 2), "the follower retried while the server was down");
        await using var second = await SseTestServer.StartAsync(new SseScript { TotalChunks = 12 }, port);
        await follow.WaitAsync(TimeSpan.FromSeconds(30));

        var chunks = received.OfType<GenerationChunkEvent>().ToList();
        chunks.Select(c => c.Seq).ShouldBe(Enumerable.Range(1, 12).Select(i => (long)i));
        string.Concat(chunks.Select(c => c.Text)).ShouldBe(ExpectedText(1, 12));
        received[^1].ShouldBeOfType<GenerationDoneEvent>();
        second.Script.Requests.ShouldHaveSingleItem().LastEventId.ShouldBe("5");
    }

    [Fact(Timeout = 30_000)]
    public async Task FollowAsync_AfterSeqGiven_StartsThere()
    {
        await using var server = await SseTestServer.StartAsync(new SseScript { TotalChunks = 8 });
        using var client = new HoldfastClient(server.Address);

        var events = await CollectAsync(client.FollowAsync(SseTestServer.GenerationId, 5, FastRetry));

        events.OfType<GenerationChunkEvent>().Select(c => c.Seq).ShouldBe([6L, 7L, 8L]);
        server.Script.Requests.ShouldHaveSingleItem().After.ShouldBe("5");
    }

    [Fact(Timeout = 30_000)]
    public async Task FollowAsync_ServerAnswers503_RetriesUntilItServes()
    {
        var script = new SseScript { TotalChunks = 3, FailFirstConnectionsWith503 = 2 };
        await using var server = await SseTestServer.StartAsync(script);
        using var client = new HoldfastClient(server.Address);

        var events = await CollectAsync(client.FollowAsync(SseTestServer.GenerationId, 0, FastRetry));

        events.OfType<GenerationChunkEvent>().Count().ShouldBe(3);
        script.ConnectionCount.ShouldBe(3);
    }

    [Fact(Timeout = 30_000)]
    public async Task FollowAsync_UnknownGeneration_ThrowsNotFoundWithoutRetrying()
    {
        await using var server = await SseTestServer.StartAsync(new SseScript());
        using var client = new HoldfastClient(server.Address);

        var error = await Should.ThrowAsync<HoldfastApiException>(() => CollectAsync(client.FollowAsync("missing", 0, FastRetry)));

        error.Status.ShouldBe(HttpStatusCode.NotFound);
        error.Detail.ShouldBe("No generation session 'missing' was found.");
        error.IsNotFound.ShouldBeTrue();
    }

    [Fact(Timeout = 30_000)]
    public async Task FollowAsync_NothingListening_GivesUpWithConnectionError()
    {
        var port = await FreePortAsync();
        using var client = new HoldfastClient(new Uri($"http://127.0.0.1:{port}"));
        var options = new FollowOptions { InitialReconnectDelay = TimeSpan.FromMilliseconds(20), MaxReconnectDelay = TimeSpan.FromMilliseconds(50), GiveUpAfter = TimeSpan.FromMilliseconds(500) };

        await Should.ThrowAsync<HttpRequestException>(() => CollectAsync(client.FollowAsync("gen-1", 0, options)));
    }

    [Fact(Timeout = 30_000)]
    public async Task ForUnixSocket_GetGeneration_TalksOverTheSocket()
    {
        using var directory = new TempDirectory();
        var socket = directory.File("holdfast.sock");
        await using var server = await SseTestServer.StartAsync(new SseScript { TotalChunks = 2 }, unixSocket: socket);
        using var client = HoldfastClient.ForUnixSocket(socket);

        var generation = await client.GetGenerationAsync(SseTestServer.GenerationId);
        var events = await CollectAsync(client.FollowAsync(SseTestServer.GenerationId, 0, FastRetry));
        var missing = await Should.ThrowAsync<HoldfastApiException>(() => client.GetGenerationAsync("other"));

        generation.Status.ShouldBe(GenerationStatus.Running);
        generation.LastSeq.ShouldBe(3);
        events.Count.ShouldBe(3);
        missing.Status.ShouldBe(HttpStatusCode.NotFound);
        missing.Message.ShouldBe("No generation session 'other' was found.");
        client.SocketPath.ShouldBe(socket);
    }

    private static string ExpectedText(int from, int to)
    {
        var builder = new StringBuilder();
        for (var seq = from; seq <= to; seq++)
        {
            builder.Append(SseTestServer.ChunkText(seq));
        }

        return builder.ToString();
    }

    private static int Count(List<GenerationStreamEvent> events)
    {
        lock (events)
        {
            return events.Count;
        }
    }

    private static async Task<List<GenerationStreamEvent>> CollectAsync(IAsyncEnumerable<GenerationStreamEvent> stream)
    {
        var list = new List<GenerationStreamEvent>();
        await foreach (var e in stream)
        {
            list.Add(e);
        }

        return list;
    }

    private static async Task<int> FreePortAsync()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await Task.Yield();
        return port;
    }
}
