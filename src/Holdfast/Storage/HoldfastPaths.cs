namespace Holdfast.Storage;

/// <summary>Default locations on disk.</summary>
public static class HoldfastPaths
{
    /// <summary>Environment variable (and configuration key) that picks the data directory.</summary>
    public const string DataEnvironmentVariable = "HOLDFAST_DATA";

    /// <summary>The XDG base directory variable (and configuration key) under which the default data directory lives.</summary>
    public const string XdgDataHomeVariable = "XDG_DATA_HOME";

    /// <summary>
    /// The data directory, from the inputs it is given (no environment is read here): <paramref name="configured"/>
    /// (<c>Storage:DataDirectory</c>) when set, else <paramref name="holdfastData"/> (<c>$HOLDFAST_DATA</c>), else
    /// <c><paramref name="xdgDataHome"/>/holdfast</c>, else <c><paramref name="userProfile"/>/.local/share/holdfast</c>.
    /// Always a full path.
    /// </summary>
    public static string ResolveDataDirectory(string? configured, string? holdfastData, string? xdgDataHome, string userProfile)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return Path.GetFullPath(configured);
        }

        if (!string.IsNullOrWhiteSpace(holdfastData))
        {
            return Path.GetFullPath(holdfastData);
        }

        var baseDirectory = !string.IsNullOrWhiteSpace(xdgDataHome)
            ? xdgDataHome
            : Path.Combine(userProfile, ".local", "share");
        return Path.GetFullPath(Path.Combine(baseDirectory, "holdfast"));
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
