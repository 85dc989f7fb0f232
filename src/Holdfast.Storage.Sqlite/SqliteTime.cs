using System.Globalization;

namespace Holdfast.Storage.Sqlite;

/// <summary>
/// Timestamps in SQLite are TEXT in fixed-width ISO-8601 UTC (<c>2026-11-22T05:54:18.1234567Z</c>), so they sort
/// as text and read well in the file.
/// </summary>
public static class SqliteTime
{
    private const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'";

    public static string Format(DateTimeOffset value) => value.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture);

    public static string? Format(DateTimeOffset? value) => value is { } v ? Format(v) : null;

    public static DateTimeOffset Parse(string value) =>
        DateTimeOffset.Parse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    public static DateTimeOffset? ParseNullable(string? value) => value is null ? null : Parse(value);
}
