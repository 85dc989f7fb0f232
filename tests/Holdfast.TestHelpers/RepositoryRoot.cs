namespace Holdfast.TestHelpers;

/// <summary>The repository checkout the tests run from (the folder holding <c>Holdfast.slnx</c>).</summary>
public static class RepositoryRoot
{
    private static readonly Lazy<string> Root = new(Find);

    public static string Path => Root.Value;

    /// <summary>A path inside the repository, e.g. <c>File("migrations", "postgres", "0001_foundation.sql")</c>.</summary>
    public static string File(params string[] parts) => System.IO.Path.Combine([Root.Value, .. parts]);

    private static string Find()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !System.IO.File.Exists(System.IO.Path.Combine(directory.FullName, "Holdfast.slnx")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName
            ?? throw new InvalidOperationException($"Could not find the repository root (Holdfast.slnx) above '{AppContext.BaseDirectory}'.");
    }
}
