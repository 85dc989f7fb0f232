using Holdfast.Generation.Backends;
using Holdfast.Audit;
using Holdfast.Storage;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Holdfast.Generation;

/// <summary>Registers generation sessions: options, backends, store, group-commit writer, runner and <see cref="GenerationSessions"/>.</summary>
public static class GenerationServiceCollectionExtensions
{
    /// <summary>
    /// Adds generation sessions (idempotent). Options come from the <c>Generation</c>, <c>Backends</c> and
    /// <c>Scripted</c> configuration sections. Needs a storage provider (<see cref="IGenerationStore"/>,
    /// <see cref="IRunStore"/>, <see cref="IAuditLog"/>, <see cref="IChangeSignals"/>, <see cref="StoreSchema"/>) and
    /// <see cref="IConfiguration"/>; the runner is a hosted service.
    /// </summary>
    public static IServiceCollection AddHoldfastGeneration(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(GenerationSessions)))
        {
            return services;
        }

        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.AddOptions<GenerationOptions>().BindConfiguration(GenerationOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GenerationOptions>, GenerationOptionsValidator>());
        services.AddOptions<Cluster.ClusterOptions>().BindConfiguration(Cluster.ClusterOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<Cluster.ClusterOptions>, Cluster.ClusterOptionsValidator>());
        services.TryAddSingleton<Cluster.NodeIdentity>();
        services.AddOptions<ScriptedBackendOptions>().BindConfiguration(ScriptedBackendOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ScriptedBackendOptions>, ScriptedBackendOptionsValidator>());
        services.AddOptions<GenerationBackendsOptions>()
            .Configure<IServiceProvider>((o, sp) => sp.GetService<IConfiguration>()?.GetSection(GenerationBackendOptions.SectionName).Bind(o.Backends))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GenerationBackendsOptions>, GenerationBackendsOptionsValidator>());

        services.TryAddSingleton<GenerationBackends>();
        services.TryAddSingleton<Sessions.SessionChanges>();
        services.TryAddSingleton<GenerationEventHub>();
        services.TryAddSingleton<GenerationLogWriter>();
        services.TryAddSingleton<GenerationFollower>();
        services.TryAddSingleton<GenerationRunner>();
        services.AddHostedService(sp => sp.GetRequiredService<GenerationRunner>());
        services.TryAddSingleton(sp => new GenerationSessions(
            sp.GetRequiredService<IGenerationStore>(),
            sp.GetRequiredService<IAuditLog>(),
            sp.GetRequiredService<IChangeSignals>(),
            sp.GetRequiredService<GenerationEventHub>(),
            sp.GetRequiredService<GenerationFollower>(),
            sp.GetRequiredService<GenerationBackends>(),
            sp.GetRequiredService<GenerationRunner>(),
            sp.GetRequiredService<IOptions<GenerationOptions>>(),
            sp.GetRequiredService<TimeProvider>()));
        return services;
    }

    /// <summary>
    /// Adds a backend from code: any <see cref="IChatClient"/> under <paramref name="name"/> (sessions pick it with
    /// <c>backend</c>). <paramref name="supportsPrefill"/> says whether it continues a trailing assistant message;
    /// when false the declared fallback is used on resume.
    /// </summary>
    public static IServiceCollection AddHoldfastGenerationBackend(
        this IServiceCollection services, string name, Func<IServiceProvider, IChatClient> factory, bool supportsPrefill, int maxConcurrency = 4)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton(new GenerationBackendRegistration(name, factory, supportsPrefill, maxConcurrency));
        return services;
    }
}
