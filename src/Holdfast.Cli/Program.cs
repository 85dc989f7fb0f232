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
WebhookCommands.AddTo(root);
StoreTransferCommands.AddTo(root);
DashboardCommand.AddTo(root);

var parseResult = root.Parse(args);
if (parseResult.Errors.Count > 0)
{
    // One line that names what is wrong (a mistyped flag by its name), as every other error.
    Console.Error.WriteLine($"holdfast: {UsageErrors.Describe(parseResult)}");
    return ExitCodes.Usage;
}

// System.CommandLine turns Ctrl-C/SIGTERM into cancellation and, by default, ends the process 2 s later whatever is
// still running. `serve` shuts down through its host instead, which handles those signals itself and gives running
// generations its own shutdown timeout (20 s) to be persisted; cutting that short would make a slow shutdown a crash.
var invocation = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
// The same for `backup` and `restore`: cut short, they would leave a half-written copy behind.
if (parseResult.CommandResult.Command is { Name: "serve" or "backup" or "restore" } command && root.Subcommands.Contains(command))
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
