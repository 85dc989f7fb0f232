using System.Collections.Concurrent;
using Holdfast.Sessions;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Holdfast.Generation.Backends;

/// <summary>
/// A backend the runner can use: an <see cref="IChatClient"/>, whether it can continue an assistant prefix
/// (prefill), and how many sessions may run on it at once.
/// </summary>
public sealed record GenerationBackend(string Name, IChatClient Client, bool SupportsPrefill, int MaxConcurrency, string? DefaultModel = null);

/// <summary>
/// A backend added in code (any <see cref="IChatClient"/>), registered with
/// <see cref="GenerationServiceCollectionExtensions.AddHoldfastGenerationBackend"/>.
/// </summary>
public sealed record GenerationBackendRegistration(string Name, Func<IServiceProvider, IChatClient> Factory, bool SupportsPrefill, int MaxConcurrency);

/// <summary>Every configured backend (<c>Backends:&lt;name&gt;</c>), keyed case-insensitively.</summary>
public sealed class GenerationBackendsOptions
{
    public Dictionary<string, GenerationBackendOptions> Backends { get; } = new(StringComparer.OrdinalIgnoreCase);
}

/// <summary>Start-up validation of every <c>Backends:&lt;name&gt;</c> section; each message names the key to fix.</summary>
internal sealed class GenerationBackendsOptionsValidator : IValidateOptions<GenerationBackendsOptions>
{
    public ValidateOptionsResult Validate(string? name, GenerationBackendsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        foreach (var (backend, o) in options.Backends)
        {
            var key = $"Backends:{backend}";
            var scripted = string.Equals(o.Type, GenerationBackends.Scripted, StringComparison.OrdinalIgnoreCase);
            if (!scripted && !string.Equals(o.Type, "openai", StringComparison.OrdinalIgnoreCase))
            {
                errors.Add($"{key}:Type is '{o.Type}'; use 'openai' (any OpenAI-compatible server) or 'scripted'.");
            }

            if (!scripted
                && (!Uri.TryCreate(o.BaseUrl, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps)))
            {
                errors.Add($"{key}:BaseUrl is '{o.BaseUrl}', which is not an http(s) URL (e.g. {GenerationBackendOptions.DefaultBaseUrl}).");
            }

            if (o.ConnectTimeout <= TimeSpan.Zero || o.ConnectTimeout > TimeSpan.FromMinutes(10))
            {
                errors.Add($"{key}:ConnectTimeout must be between 1 ms and 10 min; it is {o.ConnectTimeout}.");
            }

            if (o.ReadTimeout <= TimeSpan.Zero || o.ReadTimeout > TimeSpan.FromDays(1))
            {
                errors.Add($"{key}:ReadTimeout must be between 1 ms and 1 day; it is {o.ReadTimeout}.");
            }

            if (o.MaxRetries is < 0 or > 10)
            {
                errors.Add($"{key}:MaxRetries must be between 0 and 10; it is {o.MaxRetries}.");
            }

            if (o.RetryDelay < TimeSpan.Zero || o.RetryDelay > TimeSpan.FromMinutes(5))
            {
                errors.Add($"{key}:RetryDelay must be between 0 and 5 min; it is {o.RetryDelay}.");
            }

            if (o.MaxConcurrency is < 1 or > 100_000)
            {
                errors.Add($"{key}:MaxConcurrency must be between 1 and 100000; it is {o.MaxConcurrency}.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>
/// Resolves backend names to clients. <c>scripted</c> is always there; <c>default</c> is always there (an
/// OpenAI-compatible server at <see cref="GenerationBackendOptions.DefaultBaseUrl"/> unless configured); other names
/// come from configuration or code registrations. Clients are created once and reused.
/// </summary>
internal sealed class GenerationBackends : IDisposable
{
    public const string Scripted = "scripted";
    public const string Default = "default";

    private readonly ConcurrentDictionary<string, Lazy<GenerationBackend>> _backends = new(StringComparer.OrdinalIgnoreCase);
    private readonly GenerationBackendsOptions _configured;
    private readonly Dictionary<string, GenerationBackendRegistration> _registrations;
    private readonly ScriptedBackendOptions _scripted;
    private readonly GenerationOptions _generation;
    private readonly IServiceProvider _services;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, (DateTimeOffset At, IReadOnlyList<string>? Models)> _listed = new(StringComparer.OrdinalIgnoreCase);

    private static readonly TimeSpan ModelListLifetime = TimeSpan.FromSeconds(30);

    public GenerationBackends(
        IOptions<GenerationBackendsOptions> configured,
        IOptions<ScriptedBackendOptions> scripted,
        IOptions<GenerationOptions> generation,
        IEnumerable<GenerationBackendRegistration> registrations,
        IServiceProvider services)
    {
        _configured = configured.Value;
        _scripted = scripted.Value;
        _generation = generation.Value;
        _registrations = registrations.GroupBy(r => r.Name, StringComparer.OrdinalIgnoreCase).ToDictionary(g => g.Key, g => g.Last(), StringComparer.OrdinalIgnoreCase);
        _services = services;
        _time = services.GetService<TimeProvider>() ?? TimeProvider.System;
    }

    /// <summary>
    /// The backend name a new session gets: the requested one, else <c>scripted</c> for model <c>scripted</c>, else
    /// <see cref="GenerationOptions.DefaultBackend"/>. Throws <see cref="InvalidSessionInputException"/> for an unknown name.
    /// </summary>
    public string ChooseName(string? requested, string model)
    {
        var name = !string.IsNullOrWhiteSpace(requested)
            ? requested.Trim()
            : string.Equals(model, Scripted, StringComparison.OrdinalIgnoreCase) ? Scripted : _generation.DefaultBackend;
        if (!IsKnown(name))
        {
            var known = string.Join(", ", KnownNames());
            throw new InvalidSessionInputException(
                "backend",
                $"No backend named '{name}' is configured (known: {known}). Configure it under Backends:{name}:BaseUrl, or pick one of the known names.");
        }

        return name.ToLowerInvariant();
    }

    /// <summary>
    /// Checks that backend <paramref name="name"/> serves <paramref name="model"/>, before a session is stored. A model
    /// is known when the backend's configuration names it (<c>Model</c>, <c>Models</c>) or the backend lists it at
    /// <c>GET {BaseUrl}/models</c> (asked at most every 30 s). Throws <see cref="ModelNotFoundException"/> naming the
    /// models it does serve. Scripted and code-registered backends take any model; a backend that does not answer, or
    /// lists nothing, is not second-guessed (its sessions fail later with the reason).
    /// </summary>
    public async Task EnsureModelAsync(string name, string model, CancellationToken cancellationToken = default)
    {
        var known = await ListModelsAsync(name, cancellationToken);
        if (known is not null && !known.Contains(model, StringComparer.Ordinal))
        {
            throw new ModelNotFoundException(model, name, known);
        }
    }

    /// <summary>
    /// The models backend <paramref name="name"/> is known to serve (configured, and listed by the backend when it
    /// answers), or null when any model goes (scripted, code-registered, or a backend that lists nothing).
    /// </summary>
    public async Task<IReadOnlyList<string>?> ListModelsAsync(string name, CancellationToken cancellationToken = default)
    {
        if (!IsKnown(name) || _registrations.ContainsKey(name) || IsScripted(name))
        {
            return null;
        }

        var configured = _configured.Backends.TryGetValue(name, out var options) ? options : new GenerationBackendOptions();
        var names = new List<string>(configured.Models ?? []);
        if (!string.IsNullOrEmpty(configured.Model))
        {
            names.Add(configured.Model);
            names.Add("default");
        }

        if (Get(name).Client is not OpenAICompatibleChatClient client)
        {
            return null;
        }

        var now = _time.GetUtcNow();
        IReadOnlyList<string>? listed;
        if (_listed.TryGetValue(name, out var cached) && now - cached.At < ModelListLifetime)
        {
            listed = cached.Models;
        }
        else
        {
            try
            {
                listed = await client.ListModelsAsync(cancellationToken);
                _listed[name] = (now, listed);
            }
            catch (GenerationBackendException)
            {
                listed = null; // does not answer now: its sessions say why when they run
            }
        }

        if (listed is null)
        {
            return configured.Models is { Length: > 0 } ? [.. names.Distinct(StringComparer.Ordinal)] : null;
        }

        return [.. names.Concat(listed).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>
    /// Every model the server knows, with its backend: <c>scripted</c>, and for each other backend the models it is
    /// configured with and those it lists (backends that do not answer contribute their configured ones only).
    /// </summary>
    public async Task<IReadOnlyList<(string Model, string Backend)>> ListAllModelsAsync(CancellationToken cancellationToken = default)
    {
        var models = new List<(string, string)>();
        foreach (var name in KnownNames())
        {
            if (IsScripted(name) || (_registrations.ContainsKey(name) && !_configured.Backends.ContainsKey(name)))
            {
                if (IsScripted(name))
                {
                    models.Add((Scripted, name));
                }

                continue;
            }

            var listed = await ListModelsAsync(name, cancellationToken);
            var configured = _configured.Backends.TryGetValue(name, out var options) ? options : null;
            var names = listed ?? [.. (configured?.Models ?? []).Concat(configured?.Model is { Length: > 0 } m ? [m] : [])];
            models.AddRange(names.Where(n => n != "default").Distinct(StringComparer.Ordinal).Select(n => (n, name)));
        }

        return models;
    }

    private bool IsScripted(string name) =>
        _configured.Backends.TryGetValue(name, out var options)
            ? string.Equals(options.Type, Scripted, StringComparison.OrdinalIgnoreCase)
            : string.Equals(name, Scripted, StringComparison.OrdinalIgnoreCase);

    /// <summary>Names that <see cref="Get"/> resolves.</summary>
    public IReadOnlyList<string> KnownNames() =>
        [.. new[] { Scripted, Default }.Concat(_configured.Backends.Keys).Concat(_registrations.Keys)
            .Select(n => n.ToLowerInvariant()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    public bool IsKnown(string name) =>
        string.Equals(name, Scripted, StringComparison.OrdinalIgnoreCase)
        || string.Equals(name, Default, StringComparison.OrdinalIgnoreCase)
        || _configured.Backends.ContainsKey(name)
        || _registrations.ContainsKey(name);

    /// <summary>
    /// The backend for <paramref name="name"/>, created on first use. Never throws: a backend that is not (or no
    /// longer, or wrongly) configured is returned as one whose every request fails with a message saying what to set,
    /// so its sessions end <c>failed</c> (resumable) instead of waiting forever.
    /// </summary>
    public GenerationBackend Get(string name) => _backends.GetOrAdd(name, n => new Lazy<GenerationBackend>(() => CreateOrFailing(n))).Value;

    public void Dispose()
    {
        foreach (var backend in _backends.Values.Where(b => b.IsValueCreated))
        {
            backend.Value.Client.Dispose();
        }
    }

    private GenerationBackend CreateOrFailing(string name)
    {
        try
        {
            if (!IsKnown(name))
            {
                throw new InvalidOperationException(
                    $"No backend named '{name}' is configured any more. Set Backends:{name}:BaseUrl (or register it in code), then resume the session.");
            }

            return Create(name);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or UriFormatException)
        {
            return new GenerationBackend(name, new FailingChatClient(ex.Message), SupportsPrefill: false, MaxConcurrency: 1000);
        }
    }

    private GenerationBackend Create(string name)
    {
        if (_registrations.TryGetValue(name, out var registration))
        {
            return new GenerationBackend(name, registration.Factory(_services), registration.SupportsPrefill, Math.Max(1, registration.MaxConcurrency));
        }

        if (!_configured.Backends.TryGetValue(name, out var options))
        {
            if (string.Equals(name, Scripted, StringComparison.OrdinalIgnoreCase))
            {
                return new GenerationBackend(Scripted, new ScriptedChatClient(_scripted, _services.GetService<TimeProvider>()), true, Math.Max(1, _scripted.MaxConcurrency), Scripted);
            }

            if (!string.Equals(name, Default, StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"No backend named '{name}' is configured; set Backends:{name}:BaseUrl.");
            }

            options = new GenerationBackendOptions();
        }

        if (string.Equals(options.Type, Scripted, StringComparison.OrdinalIgnoreCase))
        {
            return new GenerationBackend(name, new ScriptedChatClient(_scripted, _services.GetService<TimeProvider>()), true, Math.Max(1, options.MaxConcurrency), Scripted);
        }

        if (!string.Equals(options.Type, "openai", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"Backends:{name}:Type is '{options.Type}'; use 'openai' (any OpenAI-compatible server) or 'scripted'.");
        }

        var client = new OpenAICompatibleChatClient(
            name,
            options,
            _services.GetService<TimeProvider>() ?? TimeProvider.System,
            _services.GetService<ILoggerFactory>()?.CreateLogger<OpenAICompatibleChatClient>());
        return new GenerationBackend(name, client, options.Prefill != PrefillMode.None, Math.Max(1, options.MaxConcurrency), options.Model);
    }
}

/// <summary>Stands in for a backend that cannot be created: every request fails with the configuration problem.</summary>
internal sealed class FailingChatClient(string message) : IChatClient
{
    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new GenerationBackendException(message);

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new GenerationBackendException(message);

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}
