using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>Lists page with <c>limit</c> and <c>next_cursor</c>: every item once, in order, no overlap, then null.</summary>
public sealed class PagingTests
{
    [Fact(Timeout = 60_000)]
    public async Task Generations_Limit2_FollowingNextCursor_SeesAllFiveOnceNewestFirst()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "0" });
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));
        var created = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            created.Add((await (await alice.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", $"page {i}")], Parameters: new GenerationParameters(MaxTokens: 1)))).ReadAsync<Generation>()).Id);
        }

        await (await bob.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", "bob's")], Parameters: new GenerationParameters(MaxTokens: 1)))).ReadAsync<Generation>();

        var pages = await ReadPagesAsync<Generation>(alice, "/api/v1/generations?limit=2");

        pages.Select(p => p.Count).ShouldBe([2, 2, 1]);
        var seen = pages.SelectMany(p => p).Select(g => g.Id).ToList();
        seen.ShouldBeUnique();
        seen.ShouldBe(Enumerable.Reverse(created).ToList(), "all five, newest first, nothing of bob's");

        // Paging with a status filter keeps to it.
        await Poll.UntilAsync(
            async () => (await (await alice.GetAsync("/api/v1/generations?status=completed&limit=500")).ReadAsync<ItemPage<Generation>>()).Items.Count == 5,
            "the five generations complete");
        var completed = await ReadPagesAsync<Generation>(alice, "/api/v1/generations?status=completed&limit=2");
        completed.SelectMany(p => p).Select(g => g.Id).ShouldBe(seen);
    }

    [Fact(Timeout = 60_000)]
    public async Task Bots_Limit2_FollowingNextCursor_SeesAllFiveOnceById()
    {
        await using var server = await TestServer.StartAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));
        var ids = new[] { "page-bot-c", "page-bot-a", "page-bot-e", "page-bot-b", "page-bot-d" };
        foreach (var id in ids)
        {
            (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest(id, "bridge"))).EnsureSuccessStatusCode();
        }

        (await bob.PostJsonAsync("/api/v1/bots", new StartBotRequest("page-bot-bob", "bridge"))).EnsureSuccessStatusCode();

        var pages = await ReadPagesAsync<Bot>(alice, "/api/v1/bots?limit=2");

        pages.Select(p => p.Count).ShouldBe([2, 2, 1]);
        var seen = pages.SelectMany(p => p).Select(b => b.SessionId).ToList();
        seen.ShouldBeUnique();
        seen.ShouldBe(ids.Order(StringComparer.Ordinal).ToList(), "all five, by id, nothing of bob's");
    }

    /// <summary>Follows <c>next_cursor</c> from <paramref name="firstPage"/> until it is null; returns every page.</summary>
    private static async Task<List<IReadOnlyList<T>>> ReadPagesAsync<T>(HttpClient client, string firstPage)
    {
        var pages = new List<IReadOnlyList<T>>();
        var path = firstPage;
        while (true)
        {
            var page = await (await client.GetAsync(path)).ReadAsync<ItemPage<T>>();
            if (page.Items.Count > 0 || page.NextCursor is not null)
            {
                pages.Add(page.Items);
            }

            if (page.NextCursor is null)
            {
                return pages;
            }

            pages.Count.ShouldBeLessThan(10, "paging ends");
            path = $"{firstPage}&cursor={Uri.EscapeDataString(page.NextCursor)}";
        }
    }
}
