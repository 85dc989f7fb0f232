using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Holdfast.Bots;

/// <summary>Registers bot sessions. Idempotent (TryAdd*): calling it twice registers everything once.</summary>
public static class BotServiceCollectionExtensions
{
    /// <summary>
    /// Bot options (<c>Bots</c> section), the auth state protector, <see cref="BotManager"/>, the <c>web</c> and
    /// <c>bridge</c> connectors and the restore-on-start hosted service. Expects a storage provider
    /// (<see cref="IBotStore"/>, e.g. <c>AddHoldfastSqliteStorage</c>).
    /// </summary>
    public static IServiceCollection AddHoldfastBots(this IServiceCollection services)
    {
        services.AddOptions<BotOptions>().BindConfiguration(BotOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BotOptions>, BotOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<BotAuthStateProtector>();
        services.TryAddSingleton<Sessions.SessionChanges>();
        services.TryAddSingleton<Cluster.NodeIdentity>();
        services.TryAddSingleton<BotManager>();
        services.AddHoldfastBotConnector<WebBotConnector>(WebBotConnector.TypeName);
        services.AddHoldfastBotConnector<BridgeBotConnector>(BridgeBotConnector.TypeName);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, BotRestoreService>());
        return services;
    }

    /// <summary>
    /// Adds a bot connector (a bot type); idempotent per connector class. <see cref="BotManager"/> picks connectors by
    /// their <see cref="IBotConnector.BotType"/>, which must be unique. With <paramref name="botType"/> the connector is
    /// also a keyed service (<c>[FromKeyedServices("web")] IBotConnector</c>).
    /// </summary>
    public static IServiceCollection AddHoldfastBotConnector<TConnector>(this IServiceCollection services, string? botType = null)
        where TConnector : class, IBotConnector
    {
        services.TryAddSingleton<TConnector>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IBotConnector, TConnector>(sp => sp.GetRequiredService<TConnector>()));
        if (botType is not null)
        {
            services.TryAddKeyedSingleton<IBotConnector>(botType, (sp, _) => sp.GetRequiredService<TConnector>());
        }

        return services;
    }
}
