using Holdfast.TestHelpers;

namespace Holdfast.Storage.Sqlite.Tests;

/// <summary>
/// The start-up integrity check (<c>PRAGMA quick_check</c>) is bounded: a file whose check takes longer than the limit
/// is not checked to the end (the server starts with a warning instead of waiting), and a sound file is sound.
/// </summary>
public sealed class SqliteQuickCheckTests
{
    [Fact(Timeout = 120_000)]
    public async Task QuickCheckAsync_CheckTakesLongerThanTheLimit_StoppedAndReportedAsNotFinished()
    {
        // Arrange: a sound 24 MB file; its whole check takes far longer than a millisecond.
        using var data = new TempDirectory("hf-quickcheck");
        var path = data.File("holdfast.db");
        await SqliteFiles.CreateLargeAsync(path, rows: 6_000);
        using var database = new SqliteDatabase(path);
        (await database.QuickCheckAsync(TimeSpan.FromMinutes(5))).ShouldBeEmpty("the file is sound when checked to the end");

        // Act
        var bounded = await database.QuickCheckAsync(TimeSpan.FromMilliseconds(1));

        // Assert: not finished (null), and not taken for damage.
        bounded.ShouldBeNull("a check past its limit is stopped, not run to the end");
        database.Damage.ShouldBeNull();
        (await database.QuickCheckAsync(TimeSpan.FromMinutes(5))).ShouldBeEmpty("the connection is usable after a stopped check");
    }
}
