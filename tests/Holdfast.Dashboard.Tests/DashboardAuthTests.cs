using System.Net;
using System.Net.Http.Json;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Dashboard.Tests;

using Generation = Holdfast.Client.Models.Generation;
using GenerationStatus = Holdfast.Client.Models.GenerationStatus;

/// <summary>The dashboard's sign-in cookie and login links at the HTTP level: what a browser relies on, and what an attacker would try.</summary>
public sealed class DashboardAuthTests
{
    private const string Header = "X-Holdfast-Dashboard";

    [Fact(Timeout = 60_000)]
    public async Task SignIn_SetsAnHttpOnlyStrictCookieWithoutTheKey_ThatAuthenticatesTheApi()
    {
        await using var server = await DashboardServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        var cookies = new CookieContainer();
        using var browser = server.Tcp(cookies: cookies);

        using var response = await SignInAsync(browser, new { api_key = key });
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var setCookie = response.Headers.GetValues("Set-Cookie").Single();
        setCookie.ShouldContain("httponly", Case.Insensitive);
        setCookie.ShouldContain("samesite=strict", Case.Insensitive);
        setCookie.ShouldContain("expires=", Case.Insensitive);
        setCookie.ShouldNotContain(key);
        (await browser.GetFromJsonAsync<Dictionary<string, object>>("/api/v1/dashboard/me"))!["user"].ToString().ShouldBe("alice");
        (await browser.GetAsync("/api/v1/generations")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact(Timeout = 60_000)]
    public async Task CookieRequests_ThatChangeSomething_NeedTheDashboardHeader()
    {
        await using var server = await DashboardServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        using var browser = server.Tcp(cookies: new CookieContainer());
        (await SignInAsync(browser, new { api_key = key })).EnsureSuccessStatusCode();
        var body = new { model = "scripted", input = "Hi", parameters = new { max_tokens = 3 } };

        // What a form on another site could send: the cookie, without the header. Refused, nothing created.
        using (var forged = await browser.PostAsJsonAsync("/api/v1/generations", body, HoldfastJson.Options))
        {
            forged.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
            (await forged.Content.ReadAsStringAsync()).ShouldContain(Header);
        }

        (await browser.GetFromJsonAsync<ItemPage<Generation>>("/api/v1/generations", HoldfastJson.Options))!.Items.ShouldBeEmpty();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/generations") { Content = JsonContent.Create(body, options: HoldfastJson.Options) };
        request.Headers.Add(Header, "1");
        (await browser.SendAsync(request)).StatusCode.ShouldBe(HttpStatusCode.Created);

        // Sign-in itself needs the header too (no login CSRF), and a bad key is a 401 with a sentence.
        using var anonymous = server.Tcp(cookies: new CookieContainer());
        (await anonymous.PostAsJsonAsync("/api/v1/dashboard/sign-in", new { api_key = key }, HoldfastJson.Options)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        using var bad = await SignInAsync(anonymous, new { api_key = "hf_000000000000_nope" });
        bad.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await bad.Content.ReadAsStringAsync()).ShouldContain("not valid");
    }

    [Fact(Timeout = 60_000)]
    public async Task RevokedKey_EndsItsDashboardSignIn()
    {
        await using var server = await DashboardServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        using var browser = server.Tcp(cookies: new CookieContainer());
        (await SignInAsync(browser, new { api_key = key })).EnsureSuccessStatusCode();
        (await browser.GetAsync("/api/v1/dashboard/me")).StatusCode.ShouldBe(HttpStatusCode.OK);

        using var socket = server.Socket();
        var keys = await socket.GetFromJsonAsync<ItemPage<ApiKeyInfo>>("/api/v1/keys", HoldfastJson.Options);
        (await socket.DeleteAsync($"/api/v1/keys/{keys!.Items.Single(k => k.User == "alice").Id}")).EnsureSuccessStatusCode();

        await Poll.UntilAsync(
            async () => (await browser.GetAsync("/api/v1/dashboard/me")).StatusCode == HttpStatusCode.Unauthorized,
            "the revoked key's sign-in stops working",
            TimeSpan.FromSeconds(10));
        (await browser.GetAsync("/api/v1/generations")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact(Timeout = 60_000)]
    public async Task RevokedKey_EndsTheLiveStreamsItsSignInHasOpen()
    {
        await using var server = await DashboardServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        using var browser = server.Tcp(cookies: new CookieContainer());
        (await SignInAsync(browser, new { api_key = key })).EnsureSuccessStatusCode();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/dashboard/sessions/stream");
        request.Headers.Accept.ParseAdd("text/event-stream");
        using var response = await browser.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line && line != "event: ready")
        {
        }

        using var socket = server.Socket();
        var keys = await socket.GetFromJsonAsync<ItemPage<ApiKeyInfo>>("/api/v1/keys", HoldfastJson.Options);
        (await socket.DeleteAsync($"/api/v1/keys/{keys!.Items.Single(k => k.User == "alice").Id}")).EnsureSuccessStatusCode();

        // The open stream ends (EventSource then reconnects, gets 401 and the page shows the sign-in form).
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var ended = false;
        try
        {
            while (await reader.ReadLineAsync(timeout.Token) is not null)
            {
            }

            ended = true;
        }
        catch (IOException)
        {
            ended = true;
        }
        catch (HttpRequestException)
        {
            ended = true;
        }

        ended.ShouldBeTrue("the stream of a revoked sign-in ends within seconds");
    }

    [Fact(Timeout = 60_000)]
    public async Task SignIn_SurvivesAServerRestart()
    {
        await using var server = await DashboardServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        var cookies = new CookieContainer();
        using (var before = server.Tcp(cookies: cookies))
        {
            (await SignInAsync(before, new { api_key = key })).EnsureSuccessStatusCode();
        }

        await server.RestartAsync();
        using var after = server.Tcp(cookies: cookies);
        (await after.GetAsync("/api/v1/dashboard/me")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact(Timeout = 60_000)]
    public async Task LoginLinks_WorkOnce_AndAreNotMadeFromASignedInBrowser()
    {
        await using var server = await DashboardServer.StartAsync();
        using var socket = server.Socket();
        var link = await (await socket.PostAsync("/api/v1/dashboard/login-links", null)).Content.ReadFromJsonAsync<DashboardLoginLink>(HoldfastJson.Options);
        link!.ExpiresAt.ShouldBeGreaterThan(DateTimeOffset.UtcNow.AddMinutes(4));
        link.ExpiresAt.ShouldBeLessThan(DateTimeOffset.UtcNow.AddMinutes(6));
        var token = link.Url[(link.Url.IndexOf("#token=", StringComparison.Ordinal) + "#token=".Length)..];

        using var browser = server.Tcp(cookies: new CookieContainer());
        using (var first = await SignInAsync(browser, new { login_token = token }))
        {
            first.StatusCode.ShouldBe(HttpStatusCode.OK);
            (await first.Content.ReadAsStringAsync()).ShouldContain("\"user\":\"local\"");
        }

        using var other = server.Tcp(cookies: new CookieContainer());
        (await SignInAsync(other, new { login_token = token })).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/dashboard/login-links");
        request.Headers.Add(Header, "1");
        (await browser.SendAsync(request)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
    }

    [Fact(Timeout = 60_000)]
    public async Task SessionsFeed_ShowsOnlyTheCallersSessions_AndAnotherUsersIdIs404()
    {
        await using var server = await DashboardServer.StartAsync();
        var alice = await server.CreateKeyAsync("alice");
        var bob = await server.CreateKeyAsync("bob");
        var mine = await server.StartGenerationAsync(alice, "mine", maxTokens: 3);
        var theirs = await server.StartGenerationAsync(bob, "theirs", maxTokens: 3);
        using var client = server.Tcp(alice);

        var snapshot = await ReadUntilReadyAsync(client, "/api/v1/dashboard/sessions/stream");
        snapshot.ShouldContain(mine.Id);
        snapshot.ShouldNotContain(theirs.Id);
        (await client.GetAsync($"/api/v1/dashboard/sessions/stream?kind=generation&id={theirs.Id}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await client.GetAsync("/api/v1/dashboard/sessions/stream?kind=nope")).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
    }

    [Fact(Timeout = 30_000)]
    public async Task Pages_OpenDirectlyWithoutAKey_WithAStrictContentSecurityPolicy_AndDataNeedsSignIn()
    {
        await using var server = await DashboardServer.StartAsync();
        using var anonymous = server.Tcp();
        foreach (var path in (string[])["/", "/signin", "/generations/gen_0123", "/bots/some-bot"])
        {
            using var page = await anonymous.GetAsync(path);
            page.StatusCode.ShouldBe(HttpStatusCode.OK, path);
            page.Content.Headers.ContentType!.MediaType.ShouldBe("text/html");
            page.Headers.GetValues("Content-Security-Policy").Single().ShouldContain("script-src 'self'");
        }

        (await anonymous.GetAsync("/dashboard/app.js")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await anonymous.GetAsync("/dashboard/nothing.js")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await anonymous.GetAsync("/api/v1/dashboard/sessions/stream")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await anonymous.GetAsync("/api/v1/dashboard/me")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    private static async Task<HttpResponseMessage> SignInAsync(HttpClient client, object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/dashboard/sign-in") { Content = JsonContent.Create(body, options: HoldfastJson.Options) };
        request.Headers.Add(Header, "1");
        return await client.SendAsync(request);
    }

    private static async Task<string> ReadUntilReadyAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new System.Text.StringBuilder();
        while (await reader.ReadLineAsync() is { } line)
        {
            text.AppendLine(line);
            if (line == "event: ready")
            {
                break;
            }
        }

        return text.ToString();
    }
}
