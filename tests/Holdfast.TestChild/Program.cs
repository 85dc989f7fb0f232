using Holdfast.TestChild;

// Verbs, one file each. Every verb prints one line per durable step to stdout, ending in " ." so a line cut by
// SIGKILL is recognisable, and runs until killed (or until its work is done).
return args switch
{
    ["bot-writes", var databasePath, var prefix] => await BotWrites.RunAsync(databasePath, prefix),
    ["bot-messages", var databasePath, var sessionId, var writer, var count] => await BotMessages.RunAsync(databasePath, sessionId, writer, int.Parse(count, System.Globalization.CultureInfo.InvariantCulture)),
    ["hold-lock", var dataDirectory] => await HoldLock.RunAsync(dataDirectory),
    ["hold-lock", var dataDirectory, var databasePath] => await HoldLock.RunAsync(dataDirectory, databasePath),
    ["generate", var dataDirectory, var count, var tokensPerSecond, var maxTokens] =>
        await GenerateSessions.RunAsync(dataDirectory, int.Parse(count, System.Globalization.CultureInfo.InvariantCulture), tokensPerSecond, maxTokens),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine(
        "usage: Holdfast.TestChild bot-writes <db path> <id prefix> | bot-messages <db path> <session id> <writer> <count> | " +
        "hold-lock <data directory> [<db path>] | generate <data directory> <count> <tokens/s> <max tokens>");
    return 2;
}
