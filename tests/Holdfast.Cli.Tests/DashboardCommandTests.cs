using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Holdfast.Client.Models;

namespace Holdfast.Cli.Tests;

public sealed class DashboardCommandTests
{
    [Fact(Timeout = 120_000)]
    public async Task Dashboard_OverTheSocket_PrintsAOneTimeLoginLinkThatSignsInTheLocalAdminOnce()
    {
        await using var server = await ServerProcess.StartNewAsync();

        var printed = await CliProcess.RunAsync(["dashboard"], server.Environment);
        var json = await CliProcess.RunAsync(["dashboard", "--json"], server.Environment);

        printed.ExitCode.ShouldBe(0, printed.ToString());
        var url = printed.Stdout.Trim();
        url.ShouldStartWith(new Uri(server.Url, "/signin#token=").ToString());
        printed.Stderr.ShouldContain("works once");
        json.ExitCode.ShouldBe(0, json.ToString());
        using (var document = JsonDocument.Parse(json.Stdout))
        {
            document.RootElement.GetProperty("url").GetString().ShouldNotBe(url, "every link is new");
            document.RootElement.GetProperty("expires_at").GetDateTimeOffset().ShouldBeGreaterThan(DateTimeOffset.UtcNow);
        }

        // What the page does with the link: post the token from the fragment once.
        var token = url[(url.IndexOf("#token=", StringComparison.Ordinal) + "#token=".Length)..];
        using var http = new HttpClient { BaseAddress = server.Url };
        using var first = await SignInAsync(http, token);
        using var second = await SignInAsync(http, token);
        first.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await first.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("user").GetString().ShouldBe("local");
        second.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact(Timeout = 60_000)]
    public async Task Dashboard_WithoutAServer_IsExit5WithOneLine()
    {
        using var data = new Holdfast.TestHelpers.TempDirectory("hf-cli");
        var result = await CliProcess.RunAsync(["dashboard"], new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path });

        result.ExitCode.ShouldBe(5, result.ToString());
        result.Stderr.Trim().Split('\n').Length.ShouldBe(1, result.ToString());
        result.Stderr.ShouldStartWith("holdfast: ");
    }

    private static Task<HttpResponseMessage> SignInAsync(HttpClient http, string token)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/dashboard/sign-in")
        {
            Content = JsonContent.Create(new { login_token = token }, options: HoldfastJson.Options),
        };
        request.Headers.Add("X-Holdfast-Dashboard", "1");
        return http.SendAsync(request);
    }
}
