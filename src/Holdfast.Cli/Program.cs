using System.CommandLine;
using Holdfast.Cli.Commands;

var root = new RootCommand("Holdfast: durable generation and bot sessions that survive restarts.");
MaintenanceCommands.AddTo(root);
ServeCommand.AddTo(root);
return await root.Parse(args).InvokeAsync();
