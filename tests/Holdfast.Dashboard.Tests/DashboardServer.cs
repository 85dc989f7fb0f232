using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using Holdfast.Client.Models;
using Holdfast.Server;
using Holdfast.TestHelpers;
using Microsoft.AspNetCore.Builder;

namespace Holdfast.Dashboard.Tests;

using Generation = Holdfast.Client.Models.Generation;
using GenerationStatus = Holdfast.Client.Models.GenerationStatus;

/// <summary>
/// A real <c>holdfast serve</c> host for one test: Kestrel on 127.0.0.1 (port 0) and the Unix socket, a SQLite file in
/// a temporary folder, the scripted backend (slow enough to pause), the embedded dashboard at <c>/</c>.
/// </summary>
public sealed class DashboardServer : IAsyncDisposable
{
    private readonly TempDirectory _directory = new("hf-dash");

    private DashboardServer()
    {
    }

    public WebApplication App { get; private set; } = null!;

    public Uri BaseAddress { get; private set; } = null!;

    public string Url(string path) => new Uri(BaseAddress, path).ToString();

    public string SocketPath => Path.Combine(_directory.Path, "holdfast.sock");

    public string DataDirectory => _directory.Path;

    public IServiceProvider Services => App.Services;

    private Dictionary<string, string?> _settings = [];

    /// <summary>Stops the server and starts a new one over the same data directory (a new port).</summary>
    public async Task RestartAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        App = await HoldfastServer.BuildAsync(HoldfastServer.CreateBuilder([], _settings));
        await App.StartAsync();
        BaseAddress = HoldfastServer.GetTcpAddress(App);
    }

    public static async Task<DashboardServer> StartAsync(IDictionary<string, string?>? settings = null)
    {
        var server = new DashboardServer();
        var all = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Storage:DataDirectory"] = server._directory.Path,
            ["Server:Urls"] = "http://127.0.0.1:0",
            [HoldfastServer.DefaultBackendKey] = "scripted",
            ["Scripted:TokensPerSecond"] = "20",
            ["Scripted:MaxTokens"] = "200",
            ["Server:RateLimitPerSecond"] = "1000",
            ["Server:RateLimitBurst"] = "5000",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        server._settings = all;
        server.App = await HoldfastServer.BuildAsync(HoldfastServer.CreateBuilder([], all));
        await server.App.StartAsync();
        server.BaseAddress = HoldfastServer.GetTcpAddress(server.App);
        return server;
    }

    /// <summary>A client over TCP with <paramref name="key"/> as Bearer (when given).</summary>
    public HttpClient Tcp(string? key = null, CookieContainer? cookies = null)
    {
        var handler = new HttpClientHandler { UseCookies = cookies is not null, CookieContainer = cookies ?? new CookieContainer() };
        var client = new HttpClient(handler) { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return client;
    }

    /// <summary>A client over the Unix socket: the local admin, no key.</summary>
    public HttpClient Socket()
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://holdfast.local"), Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>Creates an API key for <paramref name="user"/> over the socket; returns the secret.</summary>
    public async Task<string> CreateKeyAsync(string user, bool admin = false)
    {
        using var socket = Socket();
        using var response = await socket.PostAsJsonAsync("/api/v1/keys", new CreateApiKeyRequest(user, admin), HoldfastJson.Options);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<CreatedApiKey>(HoldfastJson.Options))!.Key;
    }

    /// <summary>Starts a scripted generation as the key's user; returns it.</summary>
    public async Task<Generation> StartGenerationAsync(string key, string prompt, int? maxTokens = null)
    {
        using var client = Tcp(key);
        using var response = await client.PostAsJsonAsync(
            "/api/v1/generations",
            new { model = "scripted", input = prompt, parameters = maxTokens is null ? null : new { max_tokens = maxTokens, seed = 7 } },
            HoldfastJson.Options);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<Generation>(HoldfastJson.Options))!;
    }

    public async Task<Generation> GetGenerationAsync(string key, string id)
    {
        using var client = Tcp(key);
        return (await client.GetFromJsonAsync<Generation>($"/api/v1/generations/{id}", HoldfastJson.Options))!;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await App.StopAsync();
        }
        finally
        {
            await App.DisposeAsync();
            _directory.Dispose();
        }
    }
}
