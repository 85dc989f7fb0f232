using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;

namespace Holdfast.TestChild;

/// <summary>
/// Records <c>count</c> messages on one existing bot session (<c>{writer} {i}</c>), printing <c>message {i} .</c> after
/// each commit and <c>done .</c> at the end: several of these at once prove writes from many processes are never lost.
/// </summary>
internal static class BotMessages
{
    public static async Task<int> RunAsync(string databasePath, string sessionId, string writer, int count)
    {
        using var database = new SqliteDatabase(databasePath);
        var store = new SqliteBotStore(database, TimeProvider.System);
        var actor = new Actor(writer);
        var output = Console.Out;
        for (var i = 0; i < count; i++)
        {
            await store.RecordMessageAsync(sessionId, $"{writer} {i}", actor);
            await output.WriteLineAsync($"message {i} .");
            await output.FlushAsync();
        }

        await output.WriteLineAsync("done .");
        await output.FlushAsync();
        return 0;
    }
}
