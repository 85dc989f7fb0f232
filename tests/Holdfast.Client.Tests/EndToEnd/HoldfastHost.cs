using System.Globalization;
using Holdfast.TestHelpers;

namespace Holdfast.Client.Tests.EndToEnd;

/// <summary>
/// The real Holdfast host in-process (a <see cref="TestServer"/>: Kestrel on loopback port 0 and the Unix socket, SQLite
/// in a temp folder, scripted backend), reached through the .NET client. <see cref="RestartAsync"/> stops it and starts
/// a new one on the same data directory and socket.
/// </summary>
internal sealed class HoldfastHost(TestServer server) : IAsyncDisposable
{
    public string DataDirectory => server.DataDirectory;

    public Uri Url => server.BaseAddress;

    public string SocketPath => server.SocketPath;

    public static async Task<HoldfastHost> StartAsync(double tokensPerSecond = 200) =>
        new(await TestServer.StartAsync(new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Scripted:TokensPerSecond"] = tokensPerSecond.ToString(CultureInfo.InvariantCulture),
        }));

    /// <summary>A client over the Unix socket (the local admin).</summary>
    public HoldfastClient Socket() => HoldfastClient.ForUnixSocket(SocketPath);

    /// <summary>Creates an API key for <paramref name="user"/> (over the socket) and returns a TCP client using it.</summary>
    public async Task<HoldfastClient> TcpAsAsync(string user, bool admin = false)
    {
        using var socket = Socket();
        var key = await socket.CreateKeyAsync(user, admin);
        return new HoldfastClient(Url, key.Key);
    }

    public Task RestartAsync() => server.RestartAsync();

    public ValueTask DisposeAsync() => server.DisposeAsync();
}
