using System.Net;
using System.Text;
using System.Text.Json;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

/// <summary>Issue 10 item 5: bodies that are not valid UTF-8 are a 400 in OpenAI's error shape, never a 500.</summary>
public sealed class OpenAiInputTests
{
    public static TheoryData<string, string> InvalidText => new()
    {
        { "/v1/responses", "{\"model\":\"scripted\",\"input\":\"\xFF\xFE\"}" },
        { "/v1/responses", "{\"model\":\"scripted\",\"input\":\"ok\",\"metadata\":{\"\xC0\xAF\":\"x\"}}" },
        { "/v1/responses", "{\"model\":\"scripted\",\"input\":\"\\ud800\"}" },
        { "/v1/chat/completions", "{\"model\":\"scripted\",\"messages\":[{\"role\":\"user\",\"content\":\"\xED\xA0\x80\"}]}" },
    };

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(InvalidText))]
    public async Task Post_InvalidUtf8_Is400InOpenAiShape_NothingCreated(string path, string latin1Body)
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Tcp(await server.CreateKeyAsync("alice"));
        using var content = new ByteArrayContent(Encoding.Latin1.GetBytes(latin1Body));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");

        using var response = await client.PostAsync(path, content);

        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).ShouldBe(400, body);
        using var json = JsonDocument.Parse(body);
        var error = json.RootElement.GetProperty("error");
        error.GetProperty("type").GetString().ShouldBe("invalid_request_error");
        error.GetProperty("message").GetString().ShouldNotBeNull().ShouldContain("UTF-8");
        (await client.GetStringAsync("/api/v1/generations")).ShouldContain("\"items\":[]");
    }
}
