using System.Collections.Concurrent;
using Holdfast.Client;
using Holdfast.Client.Models;
using Holdfast.Client.Streaming;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

/// <summary>Controls while many SSE followers are attached: every follower still gets the exact text.</summary>
[Collection(ResourceHeavyCollection.Name)]
public sealed class ControlUnderLoadTests
{
    [Fact(Timeout = 300_000)]
    public async Task PausesAtOnce_ManySseFollowersAttached_EveryFollowerGetsTheExactStoredText()
    {
        // Arrange: 200 running sessions (1,000 followers), 5 SSE followers each over the Unix socket.
        const int Sessions = 200;
        const int FollowersPerSession = 5;
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Scripted:TokensPerSecond"] = "20",
            ["Scripted:MaxTokens"] = "100000",
            ["Server:RateLimitPerSecond"] = "100000",

            // The default lease (10 s, renewed every 3 s): renewal has a loop of its own and goes before queued writes,
            // and a follower never relays the in-memory text of a run that lost its lease.
        });
        var clients = Enumerable.Range(0, 10).Select(_ => HoldfastClient.ForUnixSocket(server.SocketPath)).ToList();
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        try
        {
            var ids = new List<string>();
            for (var i = 0; i < Sessions; i++)
            {
                var created = await clients[0].CreateGenerationAsync(
                    new CreateGenerationRequest("scripted", [new InputMessage("user", $"Under load {i}")], Parameters: new GenerationParameters(Seed: i)),
                    cancellationToken: stop.Token);
                ids.Add(created.Id);
            }

            using var attached = new CountdownEvent(Sessions * FollowersPerSession);
            var followers = Enumerable.Range(0, Sessions * FollowersPerSession).Select(f => Task.Run(async () =>
            {
                var id = ids[f % Sessions];
                var text = new System.Text.StringBuilder();
                var first = true;
                await foreach (var e in clients[f % clients.Count].FollowAsync(id, cancellationToken: stop.Token))
                {
                    if (e is GenerationChunkEvent chunk)
                    {
                        text.Append(chunk.Text);
                        if (first)
                        {
                            first = false;
                            attached.Signal();
                        }
                    }
                }

                return (Id: id, Text: text.ToString());
            })).ToList();
            await Poll.UntilAsync(() => Task.FromResult(attached.IsSet), "every follower got a first chunk", TimeSpan.FromMinutes(2));

            // Act: every session paused at once (each waits until its runner stopped), resumed, then cancelled.
            var paused = await Task.WhenAll(ids.Select((id, i) => Task.Run(() =>
                clients[i % clients.Count].PauseGenerationAsync(id, wait: TimeSpan.FromSeconds(60), cancellationToken: stop.Token))));
            foreach (var (id, i) in ids.Select((id, i) => (id, i)))
            {
                await clients[i % clients.Count].ResumeGenerationAsync(id, cancellationToken: stop.Token);
            }

            await Poll.UntilAsync(
                async () => (await clients[0].GetGenerationAsync(ids[^1], stop.Token)).Status == GenerationStatus.Running,
                "the last session runs again");
            var cancelled = await Task.WhenAll(ids.Select((id, i) => Task.Run(() =>
                clients[i % clients.Count].CancelGenerationAsync(id, wait: TimeSpan.FromSeconds(60), cancellationToken: stop.Token))));
            var texts = await Task.WhenAll(followers);

            // Assert
            paused.ShouldAllBe(g => g.Status == GenerationStatus.Paused);
            cancelled.ShouldAllBe(g => g.Status == GenerationStatus.Cancelled);
            var outputs = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var id in ids)
            {
                outputs[id] = (await clients[0].GetGenerationAsync(id, stop.Token)).Output ?? string.Empty;
            }

            var wrong = texts.Where(t => !string.Equals(t.Text, outputs[t.Id], StringComparison.Ordinal))
                .Select(t => $"{t.Id}: got {t.Text.Length} chars, stored {outputs[t.Id].Length}, same for the first {CommonPrefix(t.Text, outputs[t.Id])}")
                .ToList();
            wrong.ShouldBeEmpty($"{wrong.Count} of {texts.Length} followers did not get the exact stored text");
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    private static int CommonPrefix(string a, string b)
    {
        var n = 0;
        while (n < a.Length && n < b.Length && a[n] == b[n])
        {
            n++;
        }

        return n;
    }
}
