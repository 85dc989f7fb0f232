using System.CommandLine;
using System.Globalization;
using Holdfast.Cli.Output;
using Holdfast.Client.Models;
using Holdfast.Security;
using Holdfast.Storage;
using Holdfast.Storage.Sqlite;
using Spectre.Console;

namespace Holdfast.Cli.Commands;

/// <summary>
/// <c>holdfast keys …</c>: API keys for TCP clients. Works directly on the database in the data directory (the server may
/// be running: SQLite serialises the writers), so the first admin key can be made before anything is listening.
/// </summary>
internal static class KeyCommands
{
    public static void AddTo(RootCommand root)
    {
        var keys = new Command("keys", "API keys for clients that connect over TCP (the Unix socket needs none).");
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
        command.SetLocalAction(async (parseResult, cancellationToken) =>
        {
            using var database = await OpenAsync(cancellationToken);
            var created = await new ApiKeyStore(database, TimeProvider.System).CreateAsync(parseResult.GetValue(user)!, parseResult.GetValue(admin), cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(new { user = created.Key.User, key = created.Secret, id = created.Key.Id, admin = created.Key.IsAdmin });
            }
            else
            {
                Console.Out.WriteLine(created.Secret);
                Terminal.Note($"[grey]Key {created.Key.Id} for {Markup.Escape(created.Key.User)}{(created.Key.IsAdmin ? " (admin)" : string.Empty)}. It is shown only now; use it with --key or HOLDFAST_KEY.[/]");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "Print the keys as JSON (never their secrets)." };
        var command = new Command("ls", "List API keys (ids and users, never the secrets).") { json };
        command.SetLocalAction(async (parseResult, cancellationToken) =>
        {
            using var database = await OpenAsync(cancellationToken);
            var keys = await new ApiKeyStore(database, TimeProvider.System).ListAsync(cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(new ItemPage<ApiKeyInfo>(keys.Select(k => new ApiKeyInfo(k.Id, k.User, k.IsAdmin, k.CreatedAt, k.RevokedAt, k.LastUsedAt)).ToList(), null));
                return ExitCodes.Ok;
            }

            if (keys.Count == 0)
            {
                Terminal.Note("[grey]No API keys. Create one with: holdfast keys create --user NAME[/]");
                return ExitCodes.Ok;
            }

            var table = new Table().Border(TableBorder.Simple);
            table.AddColumns("ID", "USER", "ADMIN", "CREATED", "REVOKED", "LAST USED");
            foreach (var key in keys)
            {
                table.AddRow(
                    key.Id,
                    Markup.Escape(key.User),
                    key.IsAdmin ? "yes" : string.Empty,
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
        command.SetLocalAction(async (parseResult, cancellationToken) =>
        {
            using var database = await OpenAsync(cancellationToken);
            var revoked = await new ApiKeyStore(database, TimeProvider.System).RevokeAsync(parseResult.GetValue(id)!, cancellationToken);
            Console.Out.WriteLine($"{revoked.Id} revoked");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Opens the database in the data directory, applying pending migrations (a fresh directory gets its schema).</summary>
    private static async Task<SqliteDatabase> OpenAsync(CancellationToken cancellationToken)
    {
        var database = SqliteDatabase.FromOptions(new StorageOptions());
        try
        {
            await database.MigrateAsync(cancellationToken);
            return database;
        }
        catch
        {
            database.Dispose();
            throw;
        }
    }
}
