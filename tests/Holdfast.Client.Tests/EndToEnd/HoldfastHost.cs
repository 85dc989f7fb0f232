using Holdfast.Server;
using Holdfast.TestHelpers;
using Microsoft.AspNetCore.Builder;

namespace Holdfast.Client.Tests.EndToEnd;

/// <summary>
/// The real Holdfast host in-process (Kestrel on loopback port 0 and the Unix socket, SQLite in a temp folder,
/// scripted backend). <see cref="RestartAsync"/> stops it and starts a new one on the same data directory and socket.
/// </summary>
internal sealed class HoldfastHost : IAsyncDisposable
{
    private readonly Dictionary<string, string?> _settings;

    private HoldfastHost(Dictionary<string, string?> settings)
    {
        _settings = settings;
    }

    public TempDirectory Data { get; } = new("holdfast-client-e2e");

    public WebApplication App { get; private set; } = null!;

    public Uri Url { get; private set; } = null!;

    public string SocketPath => Data.File("holdfast.sock");

    public static async Task<HoldfastHost> StartAsync(double tokensPerSecond = 200)
    {
        var host = new HoldfastHost(new Dictionary<string, string?>(StringComparer.Ordinal));
        host._settings["Storage:DataDirectory"] = host.Data.Path;
        host._settings["Server:Urls"] = "http://127.0.0.1:0";
        host._settings[HoldfastServer.DefaultBackendKey] = "scripted";
        host._settings["Scripted:TokensPerSecond"] = tokensPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture);
        host._settings["Logging:LogLevel:Default"] = "Warning";
        await host.LaunchAsync();
        return host;
    }

    /// <summary>A client over the Unix socket (the local admin).</summary>
    public HoldfastClient Socket() => HoldfastClient.ForUnixSocket(SocketPath);

    /// <summary>Creates an API key for <paramref name="user"/> (over the socket) and returns a TCP client using it.</summary>
    public async Task<HoldfastClient> TcpAsAsync(string user, bool admin = false)
    {
        using var socket = Socket();
        var key = await socket.CreateKeyAsync(user, admin);
        return new HoldfastClient(Url, key.Key);
    }

    public async Task RestartAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        await LaunchAsync();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
        finally
        {
            Data.Dispose();
        }
    }

    private async Task LaunchAsync()
    {
        App = await HoldfastServer.BuildAsync(HoldfastServer.CreateBuilder([], _settings));
        await App.StartAsync();
        Url = HoldfastServer.GetTcpAddress(App);
    }
}
