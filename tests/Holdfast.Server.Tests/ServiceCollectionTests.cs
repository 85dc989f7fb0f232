using Holdfast.Server.Security;
using Holdfast.TestHelpers;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Holdfast.Server.Tests;

public sealed class ServiceCollectionTests
{
    [Fact(Timeout = 30_000)]
    public async Task AddHoldfastServer_CalledTwice_RegistersEverythingOnceAndResolves()
    {
        using var data = new TempDirectory("hf");
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Storage:DataDirectory"] = data.Path })
            .Build());
        services.AddLogging();

        services.AddHoldfastServer();
        var once = services.Select(d => (d.ServiceType, d.ImplementationType)).ToList();
        services.AddHoldfastServer();

        services.Count.ShouldBe(once.Count, "the second call adds no registration");
        services.Where(d => d.ServiceType == typeof(IHostedService)).Select(d => d.ImplementationType).ShouldBeUnique();
        await using var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true });
        var schemes = await provider.GetRequiredService<IAuthenticationSchemeProvider>().GetAllSchemesAsync();
        schemes.Select(s => s.Name).Order(StringComparer.Ordinal).ShouldBe(
            new[] { DashboardCookieAuthentication.SelectorScheme, ApiKeyAuthenticationHandler.SchemeName, DashboardCookieAuthentication.CookieScheme }.Order(StringComparer.Ordinal));
        provider.GetRequiredService<IOptions<AuthorizationOptions>>().Value.GetPolicy(HoldfastServer.AdminPolicy).ShouldNotBeNull();
        provider.GetRequiredService<IOptions<Hosting.ServerOptions>>().Value.Urls.ShouldBe(Hosting.ServerOptions.DefaultUrl);
    }
}
