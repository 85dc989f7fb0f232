using System.CommandLine;
using Holdfast.Hosting;
using Holdfast.Storage;
using Microsoft.Extensions.Configuration;

namespace Holdfast.Cli.Commands;

/// <summary>
/// <c>--store</c>: which store a command opens itself (<c>serve</c>, <c>keys</c>, <c>migrate</c>, <c>check</c>,
/// <c>status</c>, <c>export</c>, <c>import</c>). A PostgreSQL connection string (<c>postgres://user:password@host:5432/db</c>,
/// <c>postgresql://…</c>, <c>Host=…;Username=…</c>); without it, <c>HOLDFAST_STORE</c>, then
/// <c>Storage:ConnectionString</c>, then the embedded SQLite file in the data directory.
/// </summary>
internal static class StoreOption
{
    /// <summary>A new <c>--store</c> option (one per command: System.CommandLine options belong to one command).</summary>
    public static Option<string?> Create() => new("--store")
    {
        Description = "The store: postgres://user:password@host:5432/db (also postgresql:// or Host=…;Username=…); default HOLDFAST_STORE, then Storage:ConnectionString, then SQLite in the data directory.",
    };

    /// <summary>The same configuration <c>holdfast serve</c> reads, with <paramref name="store"/> (when given) as <c>Storage:ConnectionString</c>.</summary>
    public static IConfigurationRoot Configuration(string? store) =>
        HoldfastConfiguration.Build(string.IsNullOrWhiteSpace(store) ? null : [new(HoldfastConfiguration.StoreKey, store)]);

    /// <summary>The settings <c>--store</c> adds (for commands that build a host, like <c>serve</c>).</summary>
    public static IEnumerable<KeyValuePair<string, string?>> Settings(string? store) =>
        string.IsNullOrWhiteSpace(store) ? [] : [new(HoldfastConfiguration.StoreKey, store)];

    /// <summary>The provider the effective store names (<c>sqlite</c> or <c>postgres</c>; null for a value that is neither).</summary>
    public static string? Provider(IConfiguration configuration) => StorageOptions.InferProvider(HoldfastConfiguration.ResolveStore(configuration));
}
