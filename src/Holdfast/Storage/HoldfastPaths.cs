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

    /// <summary>Owner read and write: the mode of every file Holdfast creates (0600).</summary>
    public const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Owner read, write and search: the mode of a data directory Holdfast creates (0700).</summary>
    public const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// Creates the directory when it does not exist yet, owner-only (0700) on Unix whatever the umask (it is set
    /// explicitly after creation). An existing directory is left as it is.
    /// </summary>
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
                Directory.CreateDirectory(path, OwnerOnlyDirectory);
                File.SetUnixFileMode(path, OwnerOnlyDirectory);
            }
        }

        return path;
    }

    /// <summary>
    /// Creates <paramref name="path"/> empty and owner-only (0600, whatever the umask) when it does not exist, so a
    /// file that a library creates on first open (SQLite's database, which its <c>-wal</c>/<c>-shm</c> files copy
    /// their mode from) starts private. An existing file is left as it is. Returns whether it was created.
    /// </summary>
    public static bool EnsureOwnerOnlyFile(string path)
    {
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.ReadWrite };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = OwnerOnlyFile;
            }

            using (new FileStream(path, options))
            {
            }
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }

        SetOwnerOnly(path);
        return true;
    }

    /// <summary>Writes <paramref name="text"/> to <paramref name="path"/> (replacing it), owner-only (0600) whatever the umask.</summary>
    public static void WriteOwnerOnly(string path, string text)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.ReadWrite };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnlyFile;
        }

        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
        }

        SetOwnerOnly(path);
    }

    /// <summary>Sets <paramref name="path"/> to 0600 on Unix (the umask only ever removes bits from a create mode; this also undoes a lax umask on files made by others).</summary>
    public static void SetOwnerOnly(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, OwnerOnlyFile);
        }
    }
}
