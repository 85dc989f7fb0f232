using Holdfast.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Holdfast.Hosting;

/// <summary>
/// The configuration every Holdfast process reads, in one place: <c>holdfast serve</c> (through the ASP.NET Core
/// builder, which has the same sources) and the commands that work on the database directly (<c>migrate</c>,
/// <c>backup</c>, <c>restore</c>, <c>check</c>, <c>keys</c>), so they all see the same data directory and file.
/// Precedence, highest first: <c>Storage:DataDirectory</c> from any source (command line, <c>Storage__DataDirectory</c>,
/// <c>appsettings.json</c>), then <c>$HOLDFAST_DATA</c>, then <c>$XDG_DATA_HOME/holdfast</c>, then
/// <c>~/.local/share/holdfast</c>.
/// </summary>
public static class HoldfastConfiguration
{
    /// <summary>Configuration key of the data directory.</summary>
    public const string DataDirectoryKey = StorageOptions.SectionName + ":" + nameof(StorageOptions.DataDirectory);

    /// <summary>
    /// The same sources <c>holdfast serve</c> reads: <c>DOTNET_</c>/<c>ASPNETCORE_</c>-prefixed environment variables,
    /// <c>appsettings.json</c> and <c>appsettings.{Environment}.json</c> next to the executable, the environment
    /// variables (<c>Storage__SqliteFile</c>, <c>HOLDFAST_DATA</c>, …), then <paramref name="settings"/>.
    /// </summary>
    public static IConfigurationRoot Build(IEnumerable<KeyValuePair<string, string?>>? settings = null) =>
        Build(AppContext.BaseDirectory, settings);

    internal static IConfigurationRoot Build(string baseDirectory, IEnumerable<KeyValuePair<string, string?>>? settings)
    {
        var hostConfiguration = new ConfigurationBuilder()
            .AddEnvironmentVariables("DOTNET_")
            .AddEnvironmentVariables("ASPNETCORE_")
            .Build();
        var environmentName = hostConfiguration["ENVIRONMENT"] is { Length: > 0 } name ? name : "Production";
        var builder = new ConfigurationBuilder()
            .AddConfiguration(hostConfiguration)
            .SetBasePath(baseDirectory)
            .AddJsonFile("appsettings.json", optional: true, reloadOnChange: false)
            .AddJsonFile($"appsettings.{environmentName}.json", optional: true, reloadOnChange: false)
            .AddEnvironmentVariables();
        if (settings is not null)
        {
            builder.AddInMemoryCollection(settings);
        }

        return builder.Build();
    }

    /// <summary>
    /// The data directory <paramref name="configuration"/> names, as a full path: <c>Storage:DataDirectory</c>, else
    /// <c>HOLDFAST_DATA</c>, else <c>XDG_DATA_HOME</c>/holdfast, else <c>~/.local/share/holdfast</c> (the environment
    /// variables are read from the configuration, which carries them).
    /// </summary>
    public static string ResolveDataDirectory(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return HoldfastPaths.ResolveDataDirectory(
            configuration[DataDirectoryKey],
            configuration[HoldfastPaths.DataEnvironmentVariable],
            configuration[HoldfastPaths.XdgDataHomeVariable],
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));
    }

    /// <summary>Configuration key of the server's Unix socket path (<c>holdfast serve --socket</c> sets it).</summary>
    public const string SocketPathKey = "Server:SocketPath";

    /// <summary>File name of the server's Unix socket in the data directory, when <c>Server:SocketPath</c> is not set.</summary>
    public const string SocketFileName = "holdfast.sock";

    /// <summary>
    /// The Unix socket <paramref name="configuration"/> names, as a full path: <c>Server:SocketPath</c> (from any source:
    /// <c>Server__SocketPath</c>, <c>appsettings.json</c>), else <c>holdfast.sock</c> in the data directory. The server
    /// listens there and the client commands connect there, so both agree.
    /// </summary>
    public static string ResolveSocketPath(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return configuration[SocketPathKey] is { } configured && !string.IsNullOrWhiteSpace(configured)
            ? Path.GetFullPath(configured)
            : Path.Combine(ResolveDataDirectory(configuration), SocketFileName);
    }

    /// <summary>Configuration key of the store (<c>--store</c> sets it).</summary>
    public const string StoreKey = StorageOptions.SectionName + ":" + nameof(StorageOptions.ConnectionString);

    /// <summary>
    /// The store <paramref name="configuration"/> names: <c>Storage:ConnectionString</c> from any source (<c>--store</c>,
    /// <c>Storage__ConnectionString</c>, <c>appsettings.json</c>), else <c>HOLDFAST_STORE</c>; null for the embedded
    /// SQLite file. The value may hold a password: never log or show it.
    /// </summary>
    public static string? ResolveStore(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return configuration[StoreKey] is { Length: > 0 } configured && !string.IsNullOrWhiteSpace(configured) ? configured
            : configuration[StorageOptions.StoreEnvironmentVariable] is { Length: > 0 } environment && !string.IsNullOrWhiteSpace(environment) ? environment
            : null;
    }

    /// <summary>
    /// <see cref="StorageOptions"/> bound from <paramref name="configuration"/> with the data directory resolved, and
    /// validated like at service start-up: throws <see cref="OptionsValidationException"/> naming every bad setting.
    /// </summary>
    public static StorageOptions GetStorageOptions(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new StorageOptions();
        configuration.GetSection(StorageOptions.SectionName).Bind(options);
        options.DataDirectory = ResolveDataDirectory(configuration);
        options.ConnectionString = ResolveStore(configuration);
        var failures = StorageOptionsValidator.Failures(options);
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(StorageOptions), failures);
        }

        return options;
    }

    /// <summary>
    /// <see cref="GetStorageOptions(IConfiguration)"/> over <see cref="Build(IEnumerable{KeyValuePair{string, string}})"/>: what the maintenance commands (and
    /// <c>holdfast keys</c>) use, so they work on the very file <c>holdfast serve</c> uses.
    /// </summary>
    public static StorageOptions LoadStorageOptions() => GetStorageOptions(Build());
}
