using System.Net.Http.Json;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Dashboard.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>
/// The dashboard tests' server: a <see cref="TestServer"/> (real host, Kestrel on 127.0.0.1 and the Unix socket, SQLite
/// in a temporary folder, the embedded dashboard at <c>/</c>) whose scripted backend is slow enough to pause, with rate
/// limits a browser test does not hit.
/// </summary>
public static class DashboardServer
{
    public static Task<TestServer> StartAsync(IDictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Scripted:TokensPerSecond"] = "20",
            ["Scripted:MaxTokens"] = "200",
            ["Server:RateLimitPerSecond"] = "1000",
            ["Server:RateLimitBurst"] = "5000",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        return TestServer.StartAsync(all);
    }

    /// <summary>Starts a scripted generation as the key's user; returns it.</summary>
    public static async Task<Generation> StartGenerationAsync(this TestServer server, string key, string prompt, int? maxTokens = null)
    {
        using var client = server.Tcp(key);
        using var response = await client.PostAsJsonAsync(
            "/api/v1/generations",
            new { model = "scripted", input = prompt, parameters = maxTokens is null ? null : new { max_tokens = maxTokens, seed = 7 } },
            HoldfastJson.Options);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<Generation>(HoldfastJson.Options))!;
    }

    public static async Task<Generation> GetGenerationAsync(this TestServer server, string key, string id)
    {
        using var client = server.Tcp(key);
        return (await client.GetFromJsonAsync<Generation>($"/api/v1/generations/{id}", HoldfastJson.Options))!;
    }
}
