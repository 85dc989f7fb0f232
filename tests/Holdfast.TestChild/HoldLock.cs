using Holdfast.Storage;

namespace Holdfast.TestChild;

/// <summary>
/// Holds the data directory lock (as <c>holdfast serve</c> does), and with a database path that database's lock too,
/// until killed or until stdin closes.
/// </summary>
internal static class HoldLock
{
    public static async Task<int> RunAsync(string dataDirectory, string? databasePath = null)
    {
        using var held = DataDirectoryLock.Acquire(dataDirectory, "test-child serve");
        using var database = databasePath is null ? null : DataDirectoryLock.AcquireDatabase(databasePath, "test-child serve");
        await Console.Out.WriteLineAsync("locked .");
        await Console.Out.FlushAsync();
        await Console.In.ReadToEndAsync();
        return 0;
    }
}
