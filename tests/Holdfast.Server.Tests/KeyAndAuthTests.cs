using System.Net;
using System.Net.Http.Json;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

public sealed class KeyAndAuthTests
{
    [Fact(Timeout = 60_000)]
    public async Task Tcp_NoKey_Is401Problem()
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Tcp();

        using var response = await client.GetAsync("/api/v1/generations");

        await response.ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        response.Headers.WwwAuthenticate.ToString().ShouldContain("Bearer");
    }

    [Theory(Timeout = 60_000)]
    [InlineData("hf_000000000000_nope")]
    [InlineData("garbage")]
    [InlineData("hf_'; DROP TABLE api_keys; --_x")]
    public async Task Tcp_BadKey_Is401Problem(string key)
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Tcp(key);

        using var response = await client.GetAsync("/api/v1/keys");

        await response.ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact(Timeout = 60_000)]
    public async Task Keys_CreatedKeyWorks_RevokedKeyIs401_SecretNeverListedOrStored()
    {
        await using var server = await TestServer.StartAsync();
        var adminKey = await server.CreateKeyAsync("root", admin: true);
        using var admin = server.Tcp(adminKey);

        using var created = await admin.PostJsonAsync("/api/v1/keys", new CreateApiKeyRequest("alice"));
        created.StatusCode.ShouldBe(HttpStatusCode.Created);
        var alice = await created.ReadAsync<CreatedApiKey>();
        using var aliceClient = server.Tcp(alice.Key);
        (await aliceClient.GetAsync("/api/v1/generations")).StatusCode.ShouldNotBe(HttpStatusCode.Unauthorized);

        var listing = await admin.GetStringAsync("/api/v1/keys");
        listing.ShouldContain(alice.Id);
        listing.ShouldNotContain(alice.Key);
        var file = await File.ReadAllBytesAsync(server.DatabasePath);
        System.Text.Encoding.UTF8.GetString(file).ShouldNotContain(alice.Key);

        (await admin.DeleteAsync($"/api/v1/keys/{alice.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        using var afterRevoke = await aliceClient.GetAsync("/api/v1/generations");
        await afterRevoke.ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact(Timeout = 60_000)]
    public async Task Keys_NonAdmin_Is403Problem()
    {
        await using var server = await TestServer.StartAsync();
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));

        using var list = await bob.GetAsync("/api/v1/keys");
        using var create = await bob.PostJsonAsync("/api/v1/keys", new CreateApiKeyRequest("mallory", Admin: true));

        await list.ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        await create.ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        using var socket = server.Socket();
        var keys = await (await socket.GetAsync("/api/v1/keys")).ReadAsync<ItemPage<ApiKeyInfo>>();
        keys.Items.ShouldHaveSingleItem().User.ShouldBe("bob");
    }

    [Fact(Timeout = 60_000)]
    public async Task RateLimit_KeyOverBurst_Gets429ProblemOthersUnaffected()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Server:RateLimitPerSecond"] = "1",
            ["Server:RateLimitBurst"] = "5",
        });
        using var noisy = server.Tcp(await server.CreateKeyAsync("noisy"));
        using var quiet = server.Tcp(await server.CreateKeyAsync("quiet"));

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 12; i++)
        {
            using var response = await noisy.GetAsync("/api/v1/generations");
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                await response.ShouldBeProblemAsync(HttpStatusCode.TooManyRequests);
                response.Headers.RetryAfter.ShouldNotBeNull();
            }
        }

        statuses.ShouldContain(HttpStatusCode.TooManyRequests);
        (await quiet.GetAsync("/api/v1/generations")).StatusCode.ShouldNotBe(HttpStatusCode.TooManyRequests);
    }

    [Fact(Timeout = 60_000)]
    public async Task UnknownRoute_IsProblemJson()
    {
        await using var server = await TestServer.StartAsync();
        using var socket = server.Socket();

        using var response = await socket.GetAsync("/api/v1/nothing-here");

        await response.ShouldBeProblemAsync(HttpStatusCode.NotFound);
    }
}
