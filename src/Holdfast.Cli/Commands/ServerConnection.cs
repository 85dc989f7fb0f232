using System.CommandLine;
using Holdfast.Client;
using Holdfast.Cli.Output;
using Holdfast.Hosting;

namespace Holdfast.Cli.Commands;

/// <summary>
/// How client commands reach the server: the Unix socket by default (the local admin, no key) — <c>Server:SocketPath</c>
/// when configured (as for <c>serve</c>), else <c>$HOLDFAST_DATA/holdfast.sock</c> — or <c>--url</c>/<c>HOLDFAST_URL</c>
/// over TCP with <c>--key</c>/<c>HOLDFAST_KEY</c>.
/// </summary>
internal static class ServerConnection
{
    public const string UrlVariable = "HOLDFAST_URL";
    public const string KeyVariable = "HOLDFAST_KEY";

    public static readonly Option<string?> Url = new("--url")
    {
        Description = $"Server address, e.g. http://127.0.0.1:7400 (default: ${UrlVariable}, else the Unix socket: Server:SocketPath, or holdfast.sock in the data directory).",
        Recursive = true,
    };

    public static readonly Option<string?> Key = new("--key")
    {
        Description = $"API key for --url (default: ${KeyVariable}). Not needed over the Unix socket.",
        Recursive = true,
    };

    /// <summary>Adds --url and --key to <paramref name="command"/> and everything under it.</summary>
    public static void AddTo(Command command)
    {
        command.Options.Add(Url);
        command.Options.Add(Key);
    }

    /// <summary>Creates the client for this invocation, and a description of where it points (for error messages).</summary>
    public static (HoldfastClient Client, string Target) Connect(ParseResult parseResult)
    {
        var url = parseResult.GetValue(Url) ?? NonEmpty(Environment.GetEnvironmentVariable(UrlVariable));
        var key = parseResult.GetValue(Key) ?? NonEmpty(Environment.GetEnvironmentVariable(KeyVariable));
        if (url is not null)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                throw new UsageException($"--url must be an http(s) address such as http://127.0.0.1:7400, not '{url}'.");
            }

            return (new HoldfastClient(uri, key), uri.ToString());
        }

        var socket = HoldfastConfiguration.ResolveSocketPath(HoldfastConfiguration.Build());
        return (HoldfastClient.ForUnixSocket(socket), "unix:" + socket);
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}

