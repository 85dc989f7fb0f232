using Holdfast.Storage;

namespace Holdfast.TestChild;

/// <summary>Holds the data directory lock (as <c>holdfast serve</c> does) until killed or until stdin closes.</summary>
internal static class HoldLock
{
    public static async Task<int> RunAsync(string dataDirectory)
    {
        using var held = DataDirectoryLock.Acquire(dataDirectory, "test-child serve");
        await Console.Out.WriteLineAsync("locked .");
        await Console.Out.FlushAsync();
        await Console.In.ReadToEndAsync();
        return 0;
    }
}
