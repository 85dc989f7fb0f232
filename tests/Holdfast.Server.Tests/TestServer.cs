using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using Holdfast.Client.Models;
using Holdfast.Server;
using Holdfast.TestHelpers;
using Microsoft.AspNetCore.Builder;

namespace Holdfast.Server.Tests;

/// <summary>
/// A real Holdfast server for one test: Kestrel on 127.0.0.1 (port 0) and the Unix socket, over a SQLite file in a
/// temp directory, scripted backend. <see cref="RestartAsync"/> stops it and starts a new one on the same directory.
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

    public Uri BaseAddress { get; private set; } = null!;

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
        await server.LaunchAsync();
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

    /// <summary>A client over TCP, with <paramref name="key"/> as Bearer when given.</summary>
    public HttpClient Tcp(string? key = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return client;
    }

    /// <summary>A client over the Unix socket (the local admin, no key).</summary>
    public HttpClient Socket() => SocketClient(SocketPath);

    public static HttpClient SocketClient(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
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
