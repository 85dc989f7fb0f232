using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Hosting;
using Holdfast.TestHelpers;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Holdfast.Tests.Bots;

public sealed class BotServiceCollectionExtensionsTests
{
    [Fact]
    public void AddHoldfastCore_CalledTwice_RegistersEveryServiceOnce()
    {
        var services = new ServiceCollection();

        services.AddHoldfastSqliteStorage();
        services.AddHoldfastCore();
        services.AddHoldfastSqliteStorage();
        services.AddHoldfastCore();
        services.AddHoldfastBots();

        services.Count(d => d.ServiceType == typeof(IBotStore)).ShouldBe(1);
        services.Count(d => d.ServiceType == typeof(IAuditLog)).ShouldBe(1);
        services.Count(d => d.ServiceType == typeof(BotManager)).ShouldBe(1);
        services.Count(d => d.ServiceType == typeof(BotAuthStateProtector)).ShouldBe(1);
        services.Count(d => d.ServiceType == typeof(IBotConnector) && !d.IsKeyedService).ShouldBe(2);
        services.Count(d => d.ServiceType == typeof(IBotConnector) && d.IsKeyedService).ShouldBe(2);
        services.Count(d => d.ServiceType == typeof(IHostedService) && d.ImplementationType == typeof(BotRestoreService)).ShouldBe(1);
        services.Count(d => d.ServiceType == typeof(IHostedService) && d.ImplementationType == typeof(Holdfast.Storage.StorageStartupService)).ShouldBe(1);
    }

    [Fact(Timeout = 30_000)]
    public async Task AddHoldfastCore_Resolved_ManagerKnowsBuiltInBotTypes()
    {
        using var temp = new TempDirectory();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Storage:DataDirectory"] = temp.Path }).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddLogging();
        services.AddHoldfastSqliteStorage();
        services.AddHoldfastCore();
        await using var provider = services.BuildServiceProvider();

        var manager = provider.GetRequiredService<BotManager>();

        manager.BotTypes.Order(StringComparer.Ordinal).ShouldBe(["bridge", "web"]);
        provider.GetServices<IBotConnector>().Count().ShouldBe(2);
        provider.GetRequiredService<WebBotConnector>().ShouldBeSameAs(provider.GetServices<IBotConnector>().OfType<WebBotConnector>().Single());
        provider.GetRequiredKeyedService<IBotConnector>("web").ShouldBeSameAs(provider.GetRequiredService<WebBotConnector>());
        provider.GetRequiredKeyedService<IBotConnector>("bridge").ShouldBeOfType<BridgeBotConnector>();
    }
}
