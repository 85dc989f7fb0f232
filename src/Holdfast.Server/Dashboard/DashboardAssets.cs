using System.Reflection;
using System.Security.Cryptography;

namespace Holdfast.Server.Dashboard;

/// <summary>
/// The dashboard's files (HTML, ES modules, CSS, icon), embedded in the server assembly at build time from
/// <c>Dashboard/wwwroot</c>: no npm step, no files beside the executable. Read once, served from memory with an ETag.
/// </summary>
internal sealed class DashboardAssets
{
    private const string Prefix = "Holdfast.Dashboard/";

    private readonly Dictionary<string, Asset> _assets = new(StringComparer.Ordinal);

    public DashboardAssets()
    {
        var assembly = typeof(DashboardAssets).Assembly;
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var bytes = copy.ToArray();
            var path = name[Prefix.Length..].Replace('\\', '/');
            _assets[path] = new Asset(bytes, ContentTypeOf(path), "\"" + Convert.ToHexStringLower(SHA256.HashData(bytes))[..16] + "\"");
        }

        if (!_assets.ContainsKey(IndexPath))
        {
            throw new InvalidOperationException($"The dashboard's {IndexPath} is not embedded in {assembly.GetName().Name}; the build is broken.");
        }
    }

    public const string IndexPath = "index.html";

    /// <summary>The asset at <paramref name="path"/> (relative to wwwroot), or null.</summary>
    public Asset? Find(string path) => _assets.GetValueOrDefault(path);

    public IReadOnlyCollection<string> Paths => _assets.Keys;

    private static string ContentTypeOf(string path) => Path.GetExtension(path) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".json" => "application/json",
        _ => "application/octet-stream",
    };

    /// <summary>One embedded file.</summary>
    internal sealed record Asset(byte[] Content, string ContentType, string ETag);
}
