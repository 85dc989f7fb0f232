using System.CommandLine;
using System.Globalization;
using System.Net.Sockets;
using Holdfast.Cli.Output;
using Holdfast.Client;
using Holdfast.Client.Models;
using Holdfast.Security;
using Spectre.Console;

namespace Holdfast.Cli.Commands;

/// <summary>
/// <c>holdfast keys …</c>: API keys for TCP clients, through the server's <c>/api/v1/keys</c> like every other client
/// command (the Unix socket by default, or <c>--url</c>/<c>--key</c> with an admin key). Only when nothing listens on
/// the socket (a fresh data directory before the first <c>serve</c>, or a server that is stopped) do they open the
/// store themselves (<see cref="StoreAccess"/>, through its key port), so the first admin key can be made before
/// anything is listening.
/// </summary>
internal static class KeyCommands
{
    /// <summary><c>--store</c>: work on that store directly (no server), e.g. the first admin key of a new PostgreSQL database.</summary>
    private static readonly Option<string?> DirectStore = new("--store")
    {
        Description = "Work on this store directly instead of through a server: postgres://user:password@host:5432/db (also postgresql:// or Host=…).",
        Recursive = true,
    };

    public static void AddTo(RootCommand root)
    {
        var keys = new Command("keys", "API keys for clients that connect over TCP (the Unix socket needs none).");
        ServerConnection.AddTo(keys);
        keys.Options.Add(DirectStore);
        keys.Subcommands.Add(Create());
        keys.Subcommands.Add(List());
        keys.Subcommands.Add(Revoke());
        root.Subcommands.Add(keys);
    }

    private static Command Create()
    {
        var user = new Option<string>("--user", "-u") { Description = "The user the key acts as (created when new).", Required = true };
        var admin = new Option<bool>("--admin") { Description = "The user sees and controls every user's sessions." };
        var json = new Option<bool>("--json") { Description = "Print {\"user\", \"key\", \"id\", \"admin\"} as JSON." };
        var command = new Command("create", "Create an API key; the key is printed this once and stored only as a hash.") { user, admin, json };
        command.SetKeyAction(async (parseResult, keys, cancellationToken) =>
        {
            var created = await keys.CreateAsync(parseResult.GetValue(user)!, parseResult.GetValue(admin), cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(new { user = created.User, key = created.Key, id = created.Id, admin = created.Admin });
            }
            else
            {
                Console.Out.WriteLine(created.Key);
                Terminal.Note($"[grey]Key {created.Id} for {Markup.Escape(created.User)}{(created.Admin ? " (admin)" : string.Empty)}. It is shown only now; use it with --key or HOLDFAST_KEY.[/]");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "Print the keys as JSON (never their secrets)." };
        var command = new Command("ls", "List API keys (ids and users, never the secrets).") { json };
        command.SetKeyAction(async (parseResult, keys, cancellationToken) =>
        {
            var all = await keys.ListAsync(cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(new ItemPage<ApiKeyInfo>(all, null));
                return ExitCodes.Ok;
            }

            if (all.Count == 0)
            {
                Terminal.Note("[grey]No API keys. Create one with: holdfast keys create --user NAME[/]");
                return ExitCodes.Ok;
            }

            var table = new Table().Border(TableBorder.Simple);
            table.AddColumns("ID", "USER", "ADMIN", "CREATED", "REVOKED", "LAST USED");
            foreach (var key in all)
            {
                table.AddRow(
                    Markup.Escape(key.Id),
                    Markup.Escape(key.User),
                    key.Admin ? "yes" : string.Empty,
                    key.CreatedAt.ToString("u", CultureInfo.InvariantCulture),
                    key.RevokedAt?.ToString("u", CultureInfo.InvariantCulture) ?? string.Empty,
                    key.LastUsedAt?.ToString("u", CultureInfo.InvariantCulture) ?? string.Empty);
            }

            Terminal.Out.Write(table);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Revoke()
    {
        var id = new Argument<string>("id") { Description = "The key's id (from keys ls), not its secret." };
        var command = new Command("revoke", "Revoke an API key: from now on it authenticates no request.") { id };
        command.SetKeyAction(async (parseResult, keys, cancellationToken) =>
        {
            var revoked = await keys.RevokeAsync(parseResult.GetValue(id)!, cancellationToken);
            Console.Out.WriteLine($"{revoked.Id} revoked");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Sets the action: reaches the keys (server, or the database when no server listens), runs, maps failures.</summary>
    private static void SetKeyAction(this Command command, Func<ParseResult, KeyAccess, CancellationToken, Task<int>> run)
    {
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            string? target = null;
            try
            {
                await using var keys = await KeyAccess.ConnectAsync(parseResult, cancellationToken);
                target = keys.Target;
                return await run(parseResult, keys, cancellationToken);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return CliAction.Fail(e, target ?? e.Data[KeyAccess.TargetKey] as string);
            }
        });
    }

    /// <summary>The API keys, either through a server (<see cref="HoldfastClient"/>) or, with none listening, in the store.</summary>
    private sealed class KeyAccess : IAsyncDisposable
    {
        public const string TargetKey = "holdfast.target";

        private readonly HoldfastClient? _client;
        private readonly StoreAccess? _store;

        private KeyAccess(HoldfastClient? client, StoreAccess? store, string target)
        {
            _client = client;
            _store = store;
            Target = target;
        }

        /// <summary>Where the keys are: the server's address, or the store (the database file).</summary>
        public string Target { get; }

        /// <summary>
        /// The server named by <c>--url</c>/<c>HOLDFAST_URL</c> (no fallback: that is a remote server), else the one on
        /// the data directory's socket; the database directly only when the socket is missing or refuses (no server).
        /// </summary>
        public static async Task<KeyAccess> ConnectAsync(ParseResult parseResult, CancellationToken cancellationToken)
        {
            if (parseResult.GetValue(DirectStore) is { Length: > 0 } storeValue)
            {
                var direct = await StoreAccess.OpenAsync(migrate: true, storeValue, cancellationToken);
                return new KeyAccess(null, direct, direct.Administration.Location);
            }

            var (client, target) = ServerConnection.Connect(parseResult);
            if (!target.StartsWith("unix:", StringComparison.Ordinal))
            {
                return new KeyAccess(client, null, target);
            }

            try
            {
                if (client.SocketPath is { } socket && File.Exists(socket))
                {
                    await client.PingAsync(cancellationToken);
                    return new KeyAccess(client, null, target);
                }
            }
            catch (HttpRequestException e) when (NothingListening(e))
            {
                // A socket file left by a server that is gone: nothing listens, so the database is free to use.
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                client.Dispose();
                e.Data[TargetKey] = target;
                throw;
            }

            client.Dispose();
            var store = await StoreAccess.OpenAsync(migrate: true, cancellationToken);
            return new KeyAccess(null, store, store.Administration.Location);
        }

        public async Task<CreatedApiKey> CreateAsync(string user, bool admin, CancellationToken cancellationToken)
        {
            if (_client is not null)
            {
                return await _client.CreateKeyAsync(user, admin, cancellationToken);
            }

            var created = await Store().CreateAsync(user, admin, cancellationToken);
            return new CreatedApiKey(created.Key.Id, created.Key.User, created.Key.IsAdmin, created.Secret);
        }

        public async Task<IReadOnlyList<ApiKeyInfo>> ListAsync(CancellationToken cancellationToken) =>
            _client is not null
                ? await _client.ListKeysAsync(cancellationToken)
                : (await Store().ListAsync(cancellationToken)).Select(ToWire).ToList();

        public async Task<ApiKeyInfo> RevokeAsync(string id, CancellationToken cancellationToken) =>
            _client is not null
                ? await _client.RevokeKeyAsync(id, cancellationToken)
                : ToWire(await Store().RevokeAsync(id, cancellationToken));

        public async ValueTask DisposeAsync()
        {
            _client?.Dispose();
            if (_store is not null)
            {
                await _store.DisposeAsync();
            }
        }

        private ApiKeys Store() => _store!.Keys;

        private static ApiKeyInfo ToWire(ApiKey k) => new(k.Id, k.User, k.IsAdmin, k.CreatedAt, k.RevokedAt, k.LastUsedAt);

        private static bool NothingListening(HttpRequestException e) =>
            e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.AddressNotAvailable };
    }
}
