using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;

namespace Holdfast.TestChild;

/// <summary>
/// Writes bot sessions continuously through the real store: for i = 0, 1, …: create session <c>{prefix}-{i}</c>,
/// print <c>created {id} .</c>; record message <c>payload {id}</c>, print <c>message {id} .</c>. A line is printed only
/// after its transaction committed, so every printed write must survive a SIGKILL.
/// </summary>
internal static class BotWrites
{
    public static async Task<int> RunAsync(string databasePath, string prefix)
    {
        using var database = new SqliteDatabase(databasePath);
        await database.MigrateAsync();
        var store = new SqliteBotStore(database, TimeProvider.System);
        var actor = Actor.System("test-child");
        var output = Console.Out;
        await output.WriteLineAsync("ready .");
        await output.FlushAsync();
        for (var i = 0; ; i++)
        {
            var id = $"{prefix}-{i}";
            await store.StartOrReactivateAsync(new StartBotSession(id, "bridge"), actor);
            await output.WriteLineAsync($"created {id} .");
            await output.FlushAsync();
            await store.RecordMessageAsync(id, $"payload {id}", actor);
            await output.WriteLineAsync($"message {id} .");
            await output.FlushAsync();
        }
    }
}
