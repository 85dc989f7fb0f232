namespace Holdfast.Storage;

/// <summary>Default locations on disk.</summary>
public static class HoldfastPaths
{
    /// <summary>Environment variable that picks the data directory.</summary>
    public const string DataEnvironmentVariable = "HOLDFAST_DATA";

    /// <summary>
    /// The data directory: <paramref name="configured"/> when given, else <c>$HOLDFAST_DATA</c>, else
    /// <c>$XDG_DATA_HOME/holdfast</c>, else <c>~/.local/share/holdfast</c>. Read once at the edge (options binding,
    /// CLI start-up), never deep in the code.
    /// </summary>
    public static string ResolveDataDirectory(string? configured = null)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return Path.GetFullPath(configured);
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(DataEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return Path.GetFullPath(fromEnvironment);
        }

        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        var baseDirectory = !string.IsNullOrWhiteSpace(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(baseDirectory, "holdfast");
    }

    /// <summary>Creates the directory (owner-only on Unix) when it does not exist yet.</summary>
    public static string EnsureDirectory(string path)
    {
        if (!Directory.Exists(path))
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(path);
            }
            else
            {
                Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        return path;
    }
}
