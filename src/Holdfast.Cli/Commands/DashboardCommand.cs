using System.CommandLine;
using System.Globalization;
using Holdfast.Cli.Output;
using Spectre.Console;

namespace Holdfast.Cli.Commands;

/// <summary>
/// <c>holdfast dashboard</c>: prints a one-time login link to the web dashboard, for people who reach the server over
/// the Unix socket (the local admin) or with <c>--url</c>/<c>--key</c> and have no key to type into the sign-in form.
/// The link works once, for five minutes; the token is in the URL's fragment, which a browser never sends to a server.
/// </summary>
internal static class DashboardCommand
{
    public static void AddTo(RootCommand root)
    {
        var json = GenerationCommands.JsonOption();
        json.Description = "Print {\"url\", \"expires_at\"} as JSON.";
        var command = new Command("dashboard", "Print a one-time login link to the web dashboard (signs a browser in as you).") { json };
        ServerConnection.AddTo(command);
        command.SetClientAction(async (parseResult, client, cancellationToken) =>
        {
            var link = await client.CreateDashboardLoginLinkAsync(cancellationToken);
            if (parseResult.GetValue(json))
            {
                Terminal.WriteJson(link);
                return ExitCodes.Ok;
            }

            Console.Out.WriteLine(link.Url);
            Terminal.Note(
                $"[grey]Open it in a browser to sign in to the dashboard. It works once, until {Markup.Escape(link.ExpiresAt.ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture))}; " +
                "the sign-in then lasts for that browser profile.[/]");
            return ExitCodes.Ok;
        });
        root.Subcommands.Add(command);
    }
}
