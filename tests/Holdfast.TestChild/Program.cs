using Holdfast.TestChild;

// Verbs, one file each. Every verb prints one line per durable step to stdout, ending in " ." so a line cut by
// SIGKILL is recognisable, and runs until killed (or until its work is done).
return args switch
{
    ["bot-writes", var databasePath, var prefix] => await BotWrites.RunAsync(databasePath, prefix),
    ["hold-lock", var dataDirectory] => await HoldLock.RunAsync(dataDirectory),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Holdfast.TestChild bot-writes <db path> <id prefix> | hold-lock <data directory>");
    return 2;
}
