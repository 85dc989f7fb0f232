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

try
{
    return await parseResult.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    return CliAction.Fail(e, null);
}
