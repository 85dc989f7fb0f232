using System.Security.Cryptography;
using Holdfast.Storage;
using Microsoft.Extensions.Options;

namespace Holdfast.Cluster;

/// <summary>
/// This node's id, resolved once: <see cref="ClusterOptions.NodeId"/> when set; else the id kept in the data
/// directory's <c>node-id</c> file, written there (0600) the first time as <c>{machine}-{random}</c>; else (options
/// made by hand, without a data directory) the machine name.
/// </summary>
public sealed class NodeIdentity
{
    /// <summary>Name of the file in the data directory that keeps the generated node id.</summary>
    public const string FileName = "node-id";

    public NodeIdentity(IOptions<ClusterOptions> cluster, IOptions<StorageOptions> storage)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(storage);
        NodeId = Resolve(cluster.Value.NodeId, storage.Value.DataDirectory);
    }

    /// <summary>The holder this node records on its leases.</summary>
    public string NodeId { get; }

    internal static bool IsValid(string id) =>
        id.Length is > 0 and <= 100 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');

    private static string Resolve(string? configured, string? dataDirectory)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return configured.Trim();
        }

        if (string.IsNullOrWhiteSpace(dataDirectory))
        {
            return Environment.MachineName;
        }

        var path = Path.Combine(Path.GetFullPath(dataDirectory), FileName);
        if (File.Exists(path) && File.ReadAllText(path).Trim() is { } stored && IsValid(stored))
        {
            return stored;
        }

        HoldfastPaths.EnsureDirectory(Path.GetDirectoryName(path)!);
        var machine = new string(Environment.MachineName.Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_').Take(60).ToArray());
        var id = $"{(machine.Length > 0 ? machine : "node")}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        HoldfastPaths.WriteOwnerOnly(path, id + "\n");
        return id;
    }
}
