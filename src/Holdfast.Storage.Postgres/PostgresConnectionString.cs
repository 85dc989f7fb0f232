using System.Globalization;
using Holdfast.Sessions;
using Npgsql;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// The PostgreSQL store value a user gives (<c>--store</c>, <c>HOLDFAST_STORE</c>, <c>Storage:ConnectionString</c>):
/// a URI (<c>postgres://user:password@host:5432/db?sslmode=require</c>, also <c>postgresql://</c>, as Supabase shows
/// it) or Npgsql's keyword form (<c>Host=…;Username=…;Password=…;Database=…</c>). Turned into Npgsql settings here, and
/// shown only through <see cref="Redact"/>, so the password never reaches a log, an error, <c>/metrics</c> or
/// <c>holdfast status</c>.
/// </summary>
public static class PostgresConnectionString
{
    private const string Hidden = "***";

    /// <summary>True when <paramref name="value"/> names a PostgreSQL store (a postgres URI or a keyword string with a host).</summary>
    public static bool IsPostgres(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return false;
        }

        var trimmed = value.Trim();
        if (IsUri(trimmed))
        {
            return true;
        }

        return trimmed.Contains('=', StringComparison.Ordinal)
            && (trimmed.Contains("host", StringComparison.OrdinalIgnoreCase) || trimmed.Contains("server", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// Npgsql settings for <paramref name="value"/>. Throws <see cref="StoreConfigurationException"/> (whose message
    /// never contains the password) when it is neither a valid URI nor a valid keyword string.
    /// </summary>
    public static NpgsqlConnectionStringBuilder Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var trimmed = value.Trim();
        var builder = IsUri(trimmed) ? FromUri(trimmed) : FromKeywords(trimmed);
        if (string.IsNullOrWhiteSpace(builder.Host))
        {
            throw new StoreConfigurationException($"The PostgreSQL store {Redact(value)} names no host; use postgres://user:password@host:5432/database.");
        }

        if (string.IsNullOrEmpty(builder.ApplicationName))
        {
            builder.ApplicationName = "holdfast";
        }

        return builder;
    }

    /// <summary>
    /// <paramref name="value"/> with its password replaced by <c>***</c>, in the form it was given; a value that cannot
    /// be parsed is shown as <c>(unreadable PostgreSQL connection string)</c> rather than risk showing a secret.
    /// </summary>
    public static string Redact(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return "(none)";
        }

        var trimmed = value.Trim();
        if (IsUri(trimmed))
        {
            if (!Uri.TryCreate(trimmed, UriKind.Absolute, out var uri))
            {
                return "(unreadable PostgreSQL connection string)";
            }

            var user = uri.UserInfo.Split(':', 2)[0];
            var port = uri.IsDefaultPort || uri.Port < 0 ? string.Empty : ":" + uri.Port.ToString(CultureInfo.InvariantCulture);
            var userInfo = uri.UserInfo.Length == 0 ? string.Empty : uri.UserInfo.Contains(':', StringComparison.Ordinal) ? $"{user}:{Hidden}@" : $"{user}@";
            var query = RedactQuery(uri.Query);
            return $"{uri.Scheme}://{userInfo}{uri.Host}{port}{uri.AbsolutePath}{query}";
        }

        try
        {
            var builder = new NpgsqlConnectionStringBuilder(trimmed);
            if (!string.IsNullOrEmpty(builder.Password))
            {
                builder.Password = Hidden;
            }

            return builder.ConnectionString;
        }
        catch (ArgumentException)
        {
            return "(unreadable PostgreSQL connection string)";
        }
    }

    /// <summary>Where the store is, without any secret: <c>host:port/database as user</c>.</summary>
    public static string Describe(NpgsqlConnectionStringBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return string.Create(CultureInfo.InvariantCulture, $"{builder.Host}:{builder.Port}/{builder.Database ?? builder.Username} as {builder.Username}");
    }

    private static bool IsUri(string value) =>
        value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase);

    private static NpgsqlConnectionStringBuilder FromKeywords(string value)
    {
        try
        {
            return new NpgsqlConnectionStringBuilder(value);
        }
        catch (ArgumentException ex)
        {
            // Npgsql's message names the keyword, never a value.
            throw new StoreConfigurationException($"The PostgreSQL connection string {Redact(value)} is not valid: {ex.Message}", ex);
        }
    }

    private static NpgsqlConnectionStringBuilder FromUri(string value)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new StoreConfigurationException(
                "The PostgreSQL store URI is not valid; use postgres://user:password@host:5432/database (percent-encode special characters of the password).");
        }

        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host,
            Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port,
        };
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                builder.Password = Uri.UnescapeDataString(parts[1]);
            }
        }

        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        builder.Database = database.Length > 0 ? database : builder.Username;
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(kv[0]);
            var item = kv.Length == 2 ? Uri.UnescapeDataString(kv[1].Replace('+', ' ')) : string.Empty;
            var keyword = key.ToLowerInvariant() switch
            {
                "sslmode" => "SSL Mode",
                "connect_timeout" => "Timeout",
                "application_name" => "Application Name",
                "options" => "Options",
                "target_session_attrs" => "Target Session Attributes",
                "sslrootcert" => "Root Certificate",
                "sslcert" => "SSL Certificate",
                "sslkey" => "SSL Key",
                _ => key,
            };
            try
            {
                builder[keyword] = keyword == "SSL Mode" ? SslModeName(item) : item;
            }
            catch (ArgumentException ex)
            {
                throw new StoreConfigurationException($"The PostgreSQL store URI {Redact(value)} has a parameter Holdfast cannot use ('{key}'): {ex.Message}", ex);
            }
        }

        return builder;
    }

    private static string SslModeName(string libpqMode) => libpqMode.ToLowerInvariant() switch
    {
        "disable" => "Disable",
        "allow" => "Allow",
        "prefer" => "Prefer",
        "require" => "Require",
        "verify-ca" => "VerifyCA",
        "verify-full" => "VerifyFull",
        _ => libpqMode,
    };

    private static string RedactQuery(string query)
    {
        if (query.Length <= 1)
        {
            return string.Empty;
        }

        var pairs = query.TrimStart('?').Split('&').Select(pair =>
        {
            var key = pair.Split('=', 2)[0];
            return key.Equals("password", StringComparison.OrdinalIgnoreCase) ? $"{key}={Hidden}" : pair;
        });
        return "?" + string.Join('&', pairs);
    }
}
