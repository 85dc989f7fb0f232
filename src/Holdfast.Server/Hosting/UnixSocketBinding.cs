using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Holdfast.Server.Hosting;

/// <summary>
/// Creates Kestrel's listen sockets. A Unix domain socket is bound, then made owner-only (0600), and only then handed
/// to Kestrel, which calls <c>listen()</c>: a connection to a socket that is not listening is refused, so nobody can
/// connect while the file still has the permissions of the process umask. (Changing the mode after Kestrel started
/// listening left such a window open.) Every other endpoint is bound as Kestrel would.
/// </summary>
internal static class UnixSocketBinding
{
    /// <summary>Owner read and write: the only mode the trusted local admin channel may have.</summary>
    public const UnixFileMode SocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>For <see cref="SocketTransportOptions.CreateBoundListenSocket"/>: bound, not yet listening.</summary>
    public static Socket CreateBoundListenSocket(EndPoint endpoint)
    {
        if (endpoint is not UnixDomainSocketEndPoint unix || OperatingSystem.IsWindows())
        {
            return SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
        }

        var path = unix.ToString();
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(unix);
            if (!path.StartsWith('@'))
            {
                // An abstract socket (Linux, "@name") has no file to protect; a path socket does.
                File.SetUnixFileMode(path, SocketMode);
            }

            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
