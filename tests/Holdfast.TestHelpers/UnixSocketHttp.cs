using System.Net.Sockets;

namespace Holdfast.TestHelpers;

/// <summary>HTTP over a Unix domain socket: how a test reaches a server's socket (the local admin, no key).</summary>
public static class UnixSocketHttp
{
    /// <summary>
    /// An <see cref="HttpClient"/> whose every connection goes to <paramref name="socketPath"/>; requests use relative
    /// paths (the base address is <c>http://holdfast.local</c>). Timeout 60 s unless given.
    /// </summary>
    public static HttpClient Create(string socketPath, TimeSpan? timeout = null)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
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
        return new HttpClient(handler) { BaseAddress = new Uri("http://holdfast.local"), Timeout = timeout ?? TimeSpan.FromSeconds(60) };
    }
}
