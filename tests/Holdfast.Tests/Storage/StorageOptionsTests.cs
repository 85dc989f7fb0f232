using Holdfast.Bots;
using Holdfast.Hosting;
using Holdfast.Storage;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Holdfast.Tests.Storage;

/// <summary>Storage settings are validated at start-up, and every process resolves the data directory the same way.</summary>
public sealed class StorageOptionsTests
{
    [Theory(Timeout = 30_000)]
    [InlineData("Data Source=holdfast.db")]
    [InlineData("mysql://root:s3cret@localhost/db")]
    public async Task HostStart_ConnectionStringNotPostgres_RefusedWithoutEchoingItAndNothingOpened(string value)
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, new Dictionary<string, string?> { ["Storage:ConnectionString"] = value });

        var ex = await Should.ThrowAsync<OptionsValidationException>(() => host.StartAsync());

        ex.Message.ShouldContain("Storage:ConnectionString (or --store, HOLDFAST_STORE) is set but is not a PostgreSQL connection string");
        ex.Message.ShouldNotContain("s3cret");
        Directory.GetFiles(temp.Path).ShouldBeEmpty();
    }

    [Theory]
    [InlineData(null, "sqlite")]
    [InlineData("  ", "sqlite")]
    [InlineData("postgres://u:p@h:5432/d", "postgres")]
    [InlineData("POSTGRESQL://u@h/d", "postgres")]
    [InlineData("Host=h;Username=u;Password=p", "postgres")]
    [InlineData("server=h;user id=u", "postgres")]
    [InlineData("Data Source=x.db", null)]
    public void InferProvider_FromTheStoreValue(string? value, string? expected) =>
        StorageOptions.InferProvider(value).ShouldBe(expected);

    [Fact]
    public void GetStorageOptions_HoldfastStore_FillsConnectionStringUnlessConfigured()
    {
        var fromVariable = HoldfastConfiguration.GetStorageOptions(Configuration(new() { ["Storage:DataDirectory"] = "/srv/x", ["HOLDFAST_STORE"] = "postgres://u@env/d" }));
        var configured = HoldfastConfiguration.GetStorageOptions(Configuration(new()
        {
            ["Storage:DataDirectory"] = "/srv/x",
            ["HOLDFAST_STORE"] = "postgres://u@env/d",
            ["Storage:ConnectionString"] = "postgres://u@configured/d",
        }));
        var none = HoldfastConfiguration.GetStorageOptions(Configuration(new() { ["Storage:DataDirectory"] = "/srv/x" }));

        fromVariable.ConnectionString.ShouldBe("postgres://u@env/d");
        fromVariable.Provider.ShouldBe(StorageOptions.PostgresProvider);
        configured.ConnectionString.ShouldBe("postgres://u@configured/d");
        none.ConnectionString.ShouldBeNull();
        none.Provider.ShouldBe(StorageOptions.SqliteProvider);
    }

    [Theory(Timeout = 30_000)]
    [InlineData("Storage:SqliteSynchronous", "OFF", "Storage:SqliteSynchronous 'OFF' is not allowed")]
    [InlineData("Storage:BusyTimeout", "00:00:00", "Storage:BusyTimeout is 00:00:00")]
    [InlineData("Storage:BusyTimeout", "-00:00:05", "it must be more than 0")]
    [InlineData("Storage:BusyTimeout", "2.00:00:00", "at most 01:00:00")]
    [InlineData("Storage:SqliteFile", " ", "Storage:SqliteFile is empty")]
    public async Task HostStart_BadSqliteSetting_RefusedNamingTheSetting(string key, string value, string expected)
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, new Dictionary<string, string?> { [key] = value });

        var ex = await Should.ThrowAsync<OptionsValidationException>(() => host.StartAsync());

        ex.Message.ShouldContain(expected);
        Directory.GetFiles(temp.Path).ShouldBeEmpty();
    }

    [Fact(Timeout = 30_000)]
    public async Task HostStart_NoConnectionStringAndNormalSync_StartsOnSqlite()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path, new Dictionary<string, string?>
        {
            ["Storage:SqliteSynchronous"] = "normal",
            ["Storage:BusyTimeout"] = "00:00:02",
        });

        await host.StartAsync();

        File.Exists(temp.File("holdfast.db")).ShouldBeTrue();
        await host.StopAsync();
    }

    [Fact]
    public void ResolveDataDirectory_Inputs_ConfiguredThenHoldfastDataThenXdgThenHome()
    {
        var home = Path.Combine(Path.GetTempPath(), "home-of-test");

        HoldfastPaths.ResolveDataDirectory("/srv/configured", "/srv/env", "/xdg", home).ShouldBe("/srv/configured");
        HoldfastPaths.ResolveDataDirectory(null, "/srv/env", "/xdg", home).ShouldBe("/srv/env");
        HoldfastPaths.ResolveDataDirectory(" ", null, "/xdg", home).ShouldBe("/xdg/holdfast");
        HoldfastPaths.ResolveDataDirectory(null, "", "", home).ShouldBe(Path.Combine(home, ".local", "share", "holdfast"));
        HoldfastPaths.ResolveDataDirectory("relative/data", null, null, home).ShouldBe(Path.GetFullPath("relative/data"));
    }

    [Fact]
    public void ResolveDataDirectory_Configuration_StorageDataDirectoryWinsOverHoldfastData()
    {
        var both = Configuration(new() { ["Storage:DataDirectory"] = "/srv/configured", ["HOLDFAST_DATA"] = "/srv/env", ["XDG_DATA_HOME"] = "/xdg" });
        var environmentOnly = Configuration(new() { ["HOLDFAST_DATA"] = "/srv/env", ["XDG_DATA_HOME"] = "/xdg" });
        var xdgOnly = Configuration(new() { ["XDG_DATA_HOME"] = "/xdg" });

        HoldfastConfiguration.ResolveDataDirectory(both).ShouldBe("/srv/configured");
        HoldfastConfiguration.ResolveDataDirectory(environmentOnly).ShouldBe("/srv/env");
        HoldfastConfiguration.ResolveDataDirectory(xdgOnly).ShouldBe("/xdg/holdfast");
    }

    [Fact(Timeout = 30_000)]
    public async Task AddHoldfastStorage_HoldfastDataInConfiguration_OptionsDatabaseAndKeyFileUseIt()
    {
        using var temp = new TempDirectory();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(Configuration(new() { ["HOLDFAST_DATA"] = temp.Path, ["XDG_DATA_HOME"] = "/nonexistent-xdg" }))
            .AddLogging();
        services.AddHoldfastSqliteStorage();
        services.AddHoldfastCore();
        await using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<StorageOptions>>().Value;
        var database = provider.GetRequiredService<SqliteDatabase>();
        using var protector = provider.GetRequiredService<BotAuthStateProtector>();

        options.DataDirectory.ShouldBe(temp.Path);
        database.Path.ShouldBe(temp.File("holdfast.db"));
        File.Exists(temp.File("bot-auth-state.key")).ShouldBeTrue();
    }

    [Fact(Timeout = 30_000)]
    public async Task Build_AppsettingsInBaseDirectory_BoundLikeServeAndSettingsOverrideIt()
    {
        using var temp = new TempDirectory();
        await File.WriteAllTextAsync(
            temp.File("appsettings.json"),
            """{ "Storage": { "DataDirectory": "/srv/from-appsettings", "SqliteFile": "from-appsettings.db", "BusyTimeout": "00:00:03" } }""");

        var fromFile = HoldfastConfiguration.GetStorageOptions(HoldfastConfiguration.Build(temp.Path, null));
        var overridden = HoldfastConfiguration.GetStorageOptions(HoldfastConfiguration.Build(
            temp.Path, new Dictionary<string, string?> { ["Storage:SqliteFile"] = "/abs/override.db" }));

        fromFile.DataDirectory.ShouldBe("/srv/from-appsettings");
        fromFile.ResolveSqlitePath().ShouldBe("/srv/from-appsettings/from-appsettings.db");
        fromFile.BusyTimeout.ShouldBe(TimeSpan.FromSeconds(3));
        overridden.ResolveSqlitePath().ShouldBe("/abs/override.db");
    }

    private static IConfigurationRoot Configuration(Dictionary<string, string?> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values).Build();
}
