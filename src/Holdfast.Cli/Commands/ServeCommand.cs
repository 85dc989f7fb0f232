using System.CommandLine;
using Holdfast.Server;
using Holdfast.Server.Hosting;
using Holdfast.Sessions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Holdfast.Cli.Commands;

/// <summary><c>holdfast serve</c>: runs the server in the foreground until Ctrl+C or SIGTERM.</summary>
internal static class ServeCommand
{
    public static void AddTo(RootCommand root)
    {
        var urls = new Option<string?>("--urls")
        {
            Description = $"TCP address(es) to listen on, separated by ';' (default {ServerOptions.DefaultUrl}; port 0 picks a free port). Requests over TCP need an API key.",
        };
        var backend = new Option<string?>("--backend")
        {
            Description = "Default generation backend for requests that name none (e.g. 'scripted', the deterministic test backend).",
        };
        var socket = new Option<string?>("--socket")
        {
            Description = "Unix socket path (default $HOLDFAST_DATA/holdfast.sock); 'none' to listen on TCP only.",
        };
        var store = StoreOption.Create();
        var serve = new Command("serve", "Run the Holdfast server (TCP on loopback and the Unix socket in the data directory).") { urls, backend, socket, store };
        serve.SetAction(async (parseResult, cancellationToken) =>
        {
            var settings = new Dictionary<string, string?>(StringComparer.Ordinal);
            if (parseResult.GetValue(urls) is { } urlList)
            {
                settings[$"{ServerOptions.SectionName}:{nameof(ServerOptions.Urls)}"] = urlList;
            }

            if (parseResult.GetValue(backend) is { } backendName)
            {
                settings[HoldfastServer.DefaultBackendKey] = backendName;
            }

            foreach (var (key, value) in StoreOption.Settings(parseResult.GetValue(store)))
            {
                settings[key] = value;
            }

            if (parseResult.GetValue(socket) is { } socketPath)
            {
                if (string.Equals(socketPath, "none", StringComparison.OrdinalIgnoreCase))
                {
                    settings[$"{ServerOptions.SectionName}:{nameof(ServerOptions.UnixSocket)}"] = "false";
                }
                else
                {
                    settings[$"{ServerOptions.SectionName}:{nameof(ServerOptions.SocketPath)}"] = socketPath;
                }
            }

            try
            {
                await using var app = await HoldfastServer.BuildAsync(HoldfastServer.CreateBuilder([], settings), cancellationToken);
                await app.RunAsync(cancellationToken);
                return 0;
            }
            catch (HoldfastException ex)
            {
                await Console.Error.WriteLineAsync("holdfast serve: " + ex.Message);
                return 2;
            }
            catch (OptionsValidationException ex)
            {
                // A setting this version cannot run on (e.g. Storage:Provider=postgres): refused before anything is opened.
                await Console.Error.WriteLineAsync("holdfast serve: " + ex.Message);
                return 2;
            }
            catch (IOException ex) when (ex.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                await Console.Error.WriteLineAsync("holdfast serve: " + ex.Message + " Pick another port with --urls.");
                return 2;
            }
        });
        root.Subcommands.Add(serve);
    }
}
