using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Holdfast.Webhooks;

/// <summary>Registers webhooks. Idempotent (TryAdd*).</summary>
public static class WebhookServiceCollectionExtensions
{
    /// <summary>
    /// Webhook options (<c>Webhooks</c> section, validated at start-up), <see cref="WebhookSubscriptions"/> and the
    /// <see cref="WebhookDispatcher"/> hosted service. Expects a storage provider (<see cref="IWebhookStore"/>) and the bot
    /// services (the secret is encrypted with the login-state key).
    /// </summary>
    public static IServiceCollection AddHoldfastWebhooks(this IServiceCollection services)
    {
        services.AddOptions<WebhookOptions>().BindConfiguration(WebhookOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WebhookOptions>, WebhookOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<WebhookSubscriptions>();
        services.TryAddSingleton<WebhookDispatcher>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, WebhookDispatcher>(sp => sp.GetRequiredService<WebhookDispatcher>()));
        return services;
    }
}
