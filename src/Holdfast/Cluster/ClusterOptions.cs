using Microsoft.Extensions.Options;

namespace Holdfast.Cluster;

/// <summary>
/// This node's place among several <c>holdfast serve</c> nodes on one store. Bound from the <c>Cluster</c>
/// configuration section. On SQLite there is one node; the same leases are used.
/// </summary>
public sealed class ClusterOptions
{
    public const string SectionName = "Cluster";

    /// <summary>
    /// This node's id: the holder recorded on the leases of the sessions it runs. Default: an id generated once and
    /// kept in the data directory (<c>node-id</c>), so every data directory is a distinct node and a node that
    /// restarts takes its own leases back at once instead of waiting for them to expire.
    /// </summary>
    public string? NodeId { get; set; }

    /// <summary>How long a held session's lease lasts without renewal (default 10 s; 1 s to 10 min).</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the node renews every lease it holds, in one statement (default 3 s; at most half of <see cref="LeaseDuration"/>).</summary>
    public TimeSpan RenewInterval { get; set; } = TimeSpan.FromSeconds(3);
}

/// <summary>Start-up validation of <see cref="ClusterOptions"/> (each message names the setting and the allowed range).</summary>
internal sealed class ClusterOptionsValidator : IValidateOptions<ClusterOptions>
{
    public ValidateOptionsResult Validate(string? name, ClusterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (options.LeaseDuration < TimeSpan.FromSeconds(1) || options.LeaseDuration > TimeSpan.FromMinutes(10))
        {
            errors.Add($"Cluster:LeaseDuration must be between 1 s and 10 min (default 10 s); it is {options.LeaseDuration}.");
        }

        if (options.RenewInterval <= TimeSpan.Zero || options.RenewInterval + options.RenewInterval > options.LeaseDuration)
        {
            errors.Add($"Cluster:RenewInterval must be more than 0 and at most half of Cluster:LeaseDuration ({options.LeaseDuration}), so a lease is renewed well before it expires; it is {options.RenewInterval}.");
        }

        if (options.NodeId is { } node && !NodeIdentity.IsValid(node.Trim()))
        {
            errors.Add("Cluster:NodeId must be 1 to 100 characters of letters, digits, '.', '-' and '_' (or unset: an id generated once and kept in the data directory).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
