using System.CommandLine;
using Holdfast.Client;
using Holdfast.Cli.Output;

namespace Holdfast.Cli.Commands;

/// <summary>Runs a client command: connects, runs it, and turns any failure into an exit code and one line on stderr.</summary>
internal static class CliAction
{
    /// <summary>Sets <paramref name="command"/>'s action to <paramref name="run"/> with a connected client.</summary>
    public static void SetClientAction(this Command command, Func<ParseResult, HoldfastClient, CancellationToken, Task<int>> run)
    {
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            string? target = null;
            try
            {
                var (client, where) = ServerConnection.Connect(parseResult);
                target = where;
                using (client)
                {
                    return await run(parseResult, client, cancellationToken);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return Fail(e, target);
            }
        });
    }

    /// <summary>Sets <paramref name="command"/>'s action to <paramref name="run"/> (no server needed).</summary>
    public static void SetLocalAction(this Command command, Func<ParseResult, CancellationToken, Task<int>> run)
    {
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            try
            {
                return await run(parseResult, cancellationToken);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return Fail(e, null);
            }
        });
    }

    /// <summary>Prints the one-line error for <paramref name="exception"/> on stderr and returns its exit code.</summary>
    public static int Fail(Exception exception, string? target)
    {
        var (code, message) = ExitCodes.From(exception, target);
        Console.Error.WriteLine($"holdfast: {message}");
        return code;
    }
}
