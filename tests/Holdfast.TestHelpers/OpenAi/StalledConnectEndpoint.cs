using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Holdfast.TestHelpers.OpenAi;

/// <summary>
/// A loopback address where a TCP connect stalls (neither accepted nor refused), to test connect timeouts for real.
/// A listening socket that never accepts still completes connects while its accept queue has room (the kernel
/// finishes the handshake), so this fills the queue first: once it is full, Linux drops further SYNs and the next
/// connect hangs until the client gives up. <see cref="StartAsync"/> checks that a probe connect really stalls.
/// </summary>
public sealed class StalledConnectEndpoint : IDisposable
{
    private readonly Socket _listener;
    private readonly List<Socket> _fillers = [];

    private StalledConnectEndpoint(Socket listener)
    {
        _listener = listener;
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
    }

    public int Port { get; }

    /// <summary>Base URL to configure as <c>Backends:&lt;name&gt;:BaseUrl</c>.</summary>
    public string BaseUrl => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}/v1");

    /// <summary>Listens without accepting and fills the accept queue; throws when a connect does not stall here.</summary>
    public static async Task<StalledConnectEndpoint> StartAsync()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var endpoint = new StalledConnectEndpoint(listener);
        try
        {
            for (var i = 0; i < 64; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                using var probe = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, endpoint.Port), probe.Token);
                    endpoint._fillers.Add(socket);
                }
                catch (OperationCanceledException)
                {
                    // The queue is full: this connect stalled, as every later one will.
                    socket.Dispose();
                    return endpoint;
                }
            }

            throw new InvalidOperationException("Connects to a full accept queue were not stalled on this machine; a connect timeout cannot be provoked here.");
        }
        catch
        {
            endpoint.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var socket in _fillers)
        {
            socket.Dispose();
        }

        _listener.Dispose();
    }
}
