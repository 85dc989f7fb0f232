using System.CommandLine;
using Holdfast.Cli.Commands;
using Holdfast.Cli.Output;

var root = new RootCommand("Holdfast: durable generation and bot sessions that survive restarts.");
MaintenanceCommands.AddTo(root);
ServeCommand.AddTo(root);
GenerationCommands.AddTo(root);
BotCommands.AddTo(root);
TopCommand.AddTo(root);
KeyCommands.AddTo(root);
DashboardCommand.AddTo(root);

var parseResult = root.Parse(args);
if (parseResult.Errors.Count > 0)
{
    foreach (var error in parseResult.Errors)
    {
        Console.Error.WriteLine($"holdfast: {error.Message}");
    }

    Console.Error.WriteLine("Run 'holdfast --help' (or 'holdfast COMMAND --help') for usage.");
    return ExitCodes.Usage;
}

// System.CommandLine turns Ctrl-C/SIGTERM into cancellation and, by default, ends the process 2 s later whatever is
// still running. `serve` shuts down through its host instead, which handles those signals itself and gives running
// generations its own shutdown timeout (20 s) to be persisted; cutting that short would make a slow shutdown a crash.
var invocation = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
if (parseResult.CommandResult.Command is { Name: "serve" } serve && root.Subcommands.Contains(serve))
{
    invocation.ProcessTerminationTimeout = null;
}

try
{
    return await parseResult.InvokeAsync(invocation);
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    return CliAction.Fail(e, null);
}
