using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Holdfast.Client.Models;
using Holdfast.Server;
using Microsoft.AspNetCore.Builder;

namespace Holdfast.TestHelpers;

/// <summary>
/// A real Holdfast server for one test, in this process: <c>HoldfastServer</c>'s host with Kestrel on 127.0.0.1 (port 0)
/// and the Unix socket, over a SQLite file in a temp directory, scripted backend (<see cref="DefaultSettings"/>, which
/// <c>settings</c> override). <see cref="RestartAsync"/> stops it and starts a new one on the same directory.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly TempDirectory? _ownedDirectory;
    private readonly Dictionary<string, string?> _settings;

    private TestServer(TempDirectory? ownedDirectory, string dataDirectory, Dictionary<string, string?> settings)
    {
        _ownedDirectory = ownedDirectory;
        DataDirectory = dataDirectory;
        _settings = settings;
    }

    public string DataDirectory { get; }

    public string SocketPath => Path.Combine(DataDirectory, "holdfast.sock");

    public string DatabasePath => Path.Combine(DataDirectory, "holdfast.db");

    public WebApplication App { get; private set; } = null!;

    public IServiceProvider Services => App.Services;

    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>The absolute TCP address of <paramref name="path"/> on this server.</summary>
    public string Url(string path) => new Uri(BaseAddress, path).ToString();

    /// <summary>Starts a server; <paramref name="settings"/> override its configuration.</summary>
    public static async Task<TestServer> StartAsync(IDictionary<string, string?>? settings = null, string? dataDirectory = null)
    {
        var owned = dataDirectory is null ? new TempDirectory("hf") : null;
        var directory = dataDirectory ?? owned!.Path;
        var all = DefaultSettings(directory);
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var server = new TestServer(owned, directory, all);
        try
        {
            await server.LaunchAsync();
        }
        catch
        {
            owned?.Dispose();
            throw;
        }

        return server;
    }

    public static Dictionary<string, string?> DefaultSettings(string directory) => new(StringComparer.Ordinal)
    {
        ["Storage:DataDirectory"] = directory,
        ["Server:Urls"] = "http://127.0.0.1:0",
        [HoldfastServer.DefaultBackendKey] = "scripted",
        ["Scripted:TokensPerSecond"] = "200",
        ["Logging:LogLevel:Default"] = "Warning",
    };

    /// <summary>Stops the server and starts a new one over the same data directory (a new port).</summary>
    public async Task RestartAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        await LaunchAsync();
    }

    /// <summary>
    /// A client over TCP, with <paramref name="key"/> as Bearer when given; with <paramref name="cookies"/> it keeps
    /// the cookies the server sets there (a browser's sign-in).
    /// </summary>
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

    /// <summary>A client over the Unix socket (the local admin, no key).</summary>
    public HttpClient Socket() => UnixSocketHttp.Create(SocketPath);

    /// <summary>Creates an API key over the socket and returns its secret.</summary>
    public async Task<string> CreateKeyAsync(string user, bool admin = false)
    {
        using var socket = Socket();
        using var response = await socket.PostAsJsonAsync("/api/v1/keys", new CreateApiKeyRequest(user, admin), HoldfastJson.Options);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<CreatedApiKey>(HoldfastJson.Options))!.Key;
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
            _ownedDirectory?.Dispose();
        }
    }

    private async Task LaunchAsync()
    {
        App = await HoldfastServer.BuildAsync(HoldfastServer.CreateBuilder([], _settings));
        await App.StartAsync();
        BaseAddress = HoldfastServer.GetTcpAddress(App);
    }
}
