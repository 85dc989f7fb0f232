using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Tests.Generation;

/// <summary>The group-commit writer, measured: its meter, and the output appends it really makes in SQLite.</summary>
public sealed class GenerationLogWriterTests
{
    [Fact(Timeout = 60_000)]
    public async Task GroupCommit_EveryCommit_RecordsFlushDurationAndCommittedChunksOnTheHostsMeter()
    {
        var measurements = new ConcurrentQueue<(Instrument Instrument, double Value)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == GenerationLogWriter.MeterName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => measurements.Enqueue((instrument, value)));
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => measurements.Enqueue((instrument, value)));
        listener.Start();
        await using var host = await GenerationTestHost.StartAsync();
        var requests = Enumerable.Range(0, 3).Select(i => GenerationTestHost.ScriptedRequest($"metrics {i}", seed: i)).ToList();

        foreach (var request in requests)
        {
            var (session, _) = await host.Sessions.CreateAsync(request);
            await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);
        }

        await host.Writer.FlushAsync();
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        var mine = measurements.Where(m => ReferenceEquals(m.Instrument.Meter.Scope, factory)).ToList();
        var flushes = mine.Where(m => m.Instrument.Name == "holdfast.generation.flush.duration").ToList();
        var chunks = mine.Where(m => m.Instrument.Name == "holdfast.generation.chunks.committed").ToList();

        host.Writer.Commits.ShouldBeGreaterThan(0);
        flushes.Count.ShouldBe((int)host.Writer.Commits, "one duration per group commit");
        flushes.ShouldAllBe(m => m.Value >= 0 && m.Value < 10_000);
        flushes[0].Instrument.Unit.ShouldBe("ms");
        flushes[0].Instrument.ShouldBeOfType<Histogram<double>>();
        chunks.Sum(m => m.Value).ShouldBe(180);
        chunks.Sum(m => m.Value).ShouldBe(host.Writer.ChunksCommitted);
        mine.ShouldNotContain(m => m.Instrument.Name == "holdfast.generation.flush.failures");
    }

    [Fact(Timeout = 60_000)]
    public async Task GroupCommit_ManySessions_OutputFoldedAtTheEndNotRewrittenPerCommit()
    {
        await using var host = await GenerationTestHost.StartAsync(startRunner: false);
        var path = host.Services.GetRequiredService<SqliteDatabase>().Path;
        await CountOutputRewritesAsync(path);
        await host.StartRunnerAsync();
        var sessions = new List<GenerationSession>();
        for (var i = 0; i < 20; i++)
        {
            sessions.Add((await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest($"appends {i}", seed: i))).Session);
        }

        var done = new List<GenerationSession>();
        foreach (var session in sessions)
        {
            done.Add(await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed));
        }

        var appends = await ReadAppendsAsync(path);
        host.Writer.ChunksCommitted.ShouldBe(20 * 60);
        host.Writer.Commits.ShouldBeGreaterThan(1);
        foreach (var session in done)
        {
            // 60 chunks stay in the log until the run ends; the ending folds them into the row once.
            var mine = appends.Where(a => a.SessionId == session.Id).ToList();
            mine.Count.ShouldBe(1, $"session {session.Id}: the output is written once, when the run ends, not by every group commit");
            mine[0].Added.ShouldBe(session.Output.Length);
            session.Output.ShouldBe(GenerationTestHost.ExpectedText(GenerationTestHost.ScriptedRequest($"appends {done.IndexOf(session)}", seed: done.IndexOf(session))));
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task GroupCommits_AdvanceTheNarrowProgressRow_NotTheSessionsRow()
    {
        // Arrange: every change of a session row's last_seq is counted.
        await using var host = await GenerationTestHost.StartAsync(
            new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "50" }, startRunner: false);
        var path = host.Services.GetRequiredService<SqliteDatabase>().Path;
        await ExecuteAsync(path, """
            CREATE TABLE test_row_advances (n INTEGER PRIMARY KEY, session_id TEXT, from_seq INTEGER, to_seq INTEGER);
            CREATE TRIGGER test_count_row_advances AFTER UPDATE OF last_seq ON generation_sessions
            WHEN new.last_seq <> old.last_seq
            BEGIN
                INSERT INTO test_row_advances (session_id, from_seq, to_seq) VALUES (new.id, old.last_seq, new.last_seq);
            END;
            """);
        await host.StartRunnerAsync();
        var requests = Enumerable.Range(0, 5).Select(i => GenerationTestHost.ScriptedRequest($"progress {i}", seed: i)).ToList();
        var sessions = new List<GenerationSession>();
        foreach (var request in requests)
        {
            sessions.Add((await host.Sessions.CreateAsync(request)).Session);
        }

        // Act: reads while they run see the progress the group commits made.
        var sawProgress = false;
        foreach (var session in sessions)
        {
            var mid = await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 3 || s.Status is GenerationStatus.Completed or GenerationStatus.Failed, "progress");
            sawProgress |= mid.Status == GenerationStatus.Running && mid.LastSeq > 2 && mid.Usage.OutputTokens == mid.LastSeq - 2;
        }

        var done = new List<GenerationSession>();
        foreach (var session in sessions)
        {
            done.Add(await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed));
        }

        // Assert: 60 chunks each in many commits; the session row moved at its claim and at its ending only.
        host.Writer.Commits.ShouldBeGreaterThan(10);
        sawProgress.ShouldBeTrue("a running session read mid-way reports the chunks committed so far");
        var advances = await ReadRowsAsync(path, "SELECT session_id, from_seq, to_seq FROM test_row_advances ORDER BY n");
        foreach (var (session, i) in done.Select((s, i) => (s, i)))
        {
            session.Output.ShouldBe(GenerationTestHost.ExpectedText(requests[i]));
            session.Usage.OutputTokens.ShouldBe(60);
            var mine = advances.Where(a => a[0] == session.Id).ToList();
            mine.Count.ShouldBeLessThanOrEqualTo(3, $"session {session.Id}: its row is written by its transitions (claim, the ending's catch-up and status), not by each group commit");
            long.Parse(mine[^1][2], System.Globalization.CultureInfo.InvariantCulture).ShouldBe(session.LastSeq);
        }

        (await ReadRowsAsync(path, "SELECT session_id FROM generation_progress")).ShouldBeEmpty("a progress row lives only while its session runs");
    }

    [Fact(Timeout = 60_000)]
    public async Task RunningSessionWithoutItsProgressRow_GetsOneBack_AndLosesNoText()
    {
        // Arrange: a running session's progress row is removed behind the store's back (as a file from before the
        // table existed would have none).
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?> { ["Scripted:TokensPerSecond"] = "100" });
        var path = host.Services.GetRequiredService<SqliteDatabase>().Path;
        var request = GenerationTestHost.ScriptedRequest("no progress row", seed: 9);
        var session = (await host.Sessions.CreateAsync(request)).Session;
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Usage.OutputTokens >= 5, "some text stored");

        // Act
        await ExecuteAsync(path, $"DELETE FROM generation_progress WHERE session_id = '{session.Id}'");
        var done = await host.WaitForStatusAsync(session.Id, GenerationStatus.Completed);

        // Assert
        done.Output.ShouldBe(GenerationTestHost.ExpectedText(request));
        done.Usage.OutputTokens.ShouldBe(60);
    }

    [Fact(Timeout = 60_000)]
    public async Task Pause_TheRequestLeavesTheOutputAlone_TheRunsEndingFoldsItOnce()
    {
        // Arrange: a run with text in the log's tail (not folded yet).
        await using var host = await GenerationTestHost.StartAsync(
            new Dictionary<string, string?> { ["Scripted:MaxTokens"] = "400", ["Scripted:TokensPerSecond"] = "50" }, startRunner: false);
        var path = host.Services.GetRequiredService<SqliteDatabase>().Path;
        await CountOutputRewritesAsync(path);
        await host.StartRunnerAsync();
        var session = (await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest("paused mid-way", seed: 5))).Session;
        await Poll.UntilAsync(() => host.Sessions.GetAsync(session.Id, null), s => s.Output.Length >= 10, "some text stored");

        // Act
        var requested = await host.Sessions.PauseAsync(session.Id, Actor.System("test", "pause"));
        var paused = await host.WaitForStatusAsync(session.Id, GenerationStatus.Paused);

        // Assert: a rewrite by the request would keep last_seq (no status event); the ending's adds its status event.
        var appends = await ReadAppendsAsync(path);
        requested.Output.Length.ShouldBeGreaterThanOrEqualTo(10, "the request's answer holds the text so far");
        appends.ShouldNotContain(a => a.ToSeq == a.FromSeq, "a pause request changes the desired state, not the text: the row's output is not rewritten");
        appends.Count.ShouldBe(1, "the run's ending folds the text into the row once");
        appends[0].ToSeq.ShouldBe(appends[0].FromSeq + 1);
        appends[0].Added.ShouldBe(paused.Output.Length);
        paused.Output.ShouldStartWith(requested.Output);
        paused.Output.ShouldBe(string.Concat((await host.Sessions.ReadLogAsync(session.Id, null, 0, 5_000)).Where(e => e.Type == GenerationLogEventType.Chunk).Select(e => e.Text)));
    }

    [Fact(Timeout = 90_000)]
    public async Task LongRun_OutputFoldedEvery256Events_ReadsWhileRunningSeeTheWholeText()
    {
        await using var host = await GenerationTestHost.StartAsync(
            new Dictionary<string, string?> { ["Scripted:MaxTokens"] = "700", ["Scripted:TokensPerSecond"] = "700" }, startRunner: false);
        var path = host.Services.GetRequiredService<SqliteDatabase>().Path;
        await CountOutputRewritesAsync(path);
        await host.StartRunnerAsync();
        var request = GenerationTestHost.ScriptedRequest("a long one", seed: 3);
        var session = (await host.Sessions.CreateAsync(request)).Session;

        // While it runs, every read is the folded text plus the chunk rows after it: always a prefix of the log's text.
        var reads = 0;
        while ((session = await host.Sessions.GetAsync(session.Id, null)).Status is GenerationStatus.Queued or GenerationStatus.Running)
        {
            var log = await host.Sessions.ReadLogAsync(session.Id, null, 0, 5_000);
            var logged = string.Concat(log.Where(e => e.Type == GenerationLogEventType.Chunk && e.Seq <= session.LastSeq).Select(e => e.Text));
            session.Output.ShouldBe(logged, "a running session's output is its folded text and its tail of chunk rows");
            reads++;
            await Task.Delay(20);
        }

        session.Status.ShouldBe(GenerationStatus.Completed);
        session.Output.ShouldBe(GenerationTestHost.ExpectedText(request, configuredMax: 700));
        reads.ShouldBeGreaterThan(0);
        var appends = await ReadAppendsAsync(path);
        // One fold at least every 256 events and one at the end (none when the last commit folded everything already).
        appends.Count.ShouldBeInRange(1, 1 + (701 / 256), "folded every 256 events and at the end, never per commit");
        appends.Sum(a => a.Added).ShouldBe(session.Output.Length);
        for (var i = 1; i < appends.Count; i++)
        {
            appends[i].FromSeq.ShouldBeGreaterThanOrEqualTo(appends[i - 1].ToSeq);
            (appends[i].ToSeq - appends[i - 1].ToSeq).ShouldBeGreaterThanOrEqualTo(i < appends.Count - 1 ? 256 : 1);
        }
    }

    /// <summary>Runs <paramref name="whileHeld"/> (given the time since the lock was taken) while another connection holds the write lock.</summary>
    private static async Task HoldingTheWriteLockAsync(GenerationTestHost host, Func<System.Diagnostics.Stopwatch, Task> whileHeld)
    {
        await using var blocker = new SqliteConnection($"Data Source={host.Services.GetRequiredService<SqliteDatabase>().Path};Pooling=False");
        await blocker.OpenAsync();
        await using var begin = blocker.CreateCommand();
        begin.CommandText = "BEGIN IMMEDIATE";
        await begin.ExecuteNonQueryAsync();
        await whileHeld(System.Diagnostics.Stopwatch.StartNew());
        await using var rollback = blocker.CreateCommand();
        rollback.CommandText = "ROLLBACK";
        await rollback.ExecuteNonQueryAsync();
    }

    /// <summary>A trigger counts every UPDATE that changes a session's stored output: the real statements, in the real file.</summary>
    private static Task CountOutputRewritesAsync(string path) => ExecuteAsync(path, """
        CREATE TABLE test_output_appends (n INTEGER PRIMARY KEY, session_id TEXT, from_seq INTEGER, to_seq INTEGER, added INTEGER);
        CREATE TRIGGER test_count_output_appends AFTER UPDATE OF output ON generation_sessions
        WHEN new.output <> old.output
        BEGIN
            INSERT INTO test_output_appends (session_id, from_seq, to_seq, added)
            VALUES (new.id, old.last_seq, new.last_seq, length(new.output) - length(old.output));
        END;
        """);

    [Fact(Timeout = 90_000)]
    public async Task StoreFallsBehind_StreamsWaitForRoom_UnpersistedOutputStaysBounded()
    {
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Generation:FlushMaxChunks"] = "16",
            ["Generation:MaxChunksPerCommit"] = "64",
            ["Storage:BusyTimeout"] = "00:00:30", // the writer waits for the lock instead of failing
            ["Scripted:TokensPerSecond"] = "1000",
            ["Scripted:MaxTokens"] = "600",
        });
        var requests = Enumerable.Range(0, 10).Select(i => GenerationTestHost.ScriptedRequest($"room {i}", seed: i)).ToList();
        var sessions = new List<GenerationSession>();
        foreach (var request in requests)
        {
            sessions.Add((await host.Sessions.CreateAsync(request)).Session);
        }

        await Poll.UntilAsync(() => Task.FromResult(host.Writer.ChunksCommitted >= 20), "some chunks committed");

        // Another connection holds the write lock for a second: 10 streams of 1,000 tokens/s would queue ~10,000 chunks.
        await HoldingTheWriteLockAsync(host, async waited =>
        {
            await Poll.UntilAsync(() => Task.FromResult(waited.ElapsedMilliseconds >= 1_000), "chunks to pile up for a second", interval: TimeSpan.FromMilliseconds(50));
            host.Writer.Throttled.ShouldBeGreaterThan(0, "streams waited for room");

            // The bound, plus one chunk per stream (each queues its chunk, then waits), plus the endings.
            host.Writer.QueueLength.ShouldBeLessThanOrEqualTo(64 + 10 + 10, "what is not yet durable (what a crash loses) stays bounded");
        });

        for (var i = 0; i < sessions.Count; i++)
        {
            var done = await host.WaitForStatusAsync(sessions[i].Id, GenerationStatus.Completed, TimeSpan.FromSeconds(60));
            done.Output.ShouldBe(GenerationTestHost.ExpectedText(requests[i], 600), "a stream that waited for room continues exactly");
        }
    }

    [Theory(Timeout = 90_000)]
    [InlineData(100_000)]
    [InlineData(16)]
    public async Task GroupCommit_WriterFellBehind_NextCommitTakesEverythingWaitingUpToMaxChunksPerCommit(int maxPerCommit)
    {
        var perCommit = new ConcurrentQueue<(Instrument Instrument, long Value)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == GenerationLogWriter.MeterName && instrument.Name == "holdfast.generation.chunks.committed")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => perCommit.Enqueue((instrument, value)));
        listener.Start();
        await using var host = await GenerationTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Generation:FlushMaxChunks"] = "16",
            ["Generation:MaxChunksPerCommit"] = maxPerCommit.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Storage:BusyTimeout"] = "00:00:30", // the writer waits for the lock instead of failing
            ["Scripted:TokensPerSecond"] = "200",
            ["Scripted:MaxTokens"] = "400",
        });
        var requests = Enumerable.Range(0, 10).Select(i => GenerationTestHost.ScriptedRequest($"behind {i}", seed: i)).ToList();
        var sessions = new List<GenerationSession>();
        foreach (var request in requests)
        {
            sessions.Add((await host.Sessions.CreateAsync(request)).Session);
        }

        await Poll.UntilAsync(() => Task.FromResult(host.Writer.ChunksCommitted >= 20), "some chunks committed");

        // Another connection holds the write lock for a while, as a backup tool would: chunks pile up behind it.
        await HoldingTheWriteLockAsync(host, async waited =>
        {
            await Poll.UntilAsync(() => Task.FromResult(waited.ElapsedMilliseconds >= 100), "the lock to settle", interval: TimeSpan.FromMilliseconds(10));
            var blockedAt = host.Writer.ChunksCommitted;
            await Poll.UntilAsync(() => Task.FromResult(waited.ElapsedMilliseconds >= 1_000), "chunks to pile up for a second", interval: TimeSpan.FromMilliseconds(50));
            host.Writer.ChunksCommitted.ShouldBe(blockedAt, "nothing commits while another connection holds the write lock");
        });

        for (var i = 0; i < sessions.Count; i++)
        {
            var done = await host.WaitForStatusAsync(sessions[i].Id, GenerationStatus.Completed, TimeSpan.FromSeconds(60));
            done.Output.ShouldBe(GenerationTestHost.ExpectedText(requests[i], 400));
        }

        var factory = host.Services.GetRequiredService<IMeterFactory>();
        var largest = perCommit.Where(m => ReferenceEquals(m.Instrument.Meter.Scope, factory)).Max(m => m.Value);
        if (maxPerCommit > 16)
        {
            largest.ShouldBeGreaterThan(16 * 10, "after the lock, one commit takes everything that piled up, not FlushMaxChunks at a time");
        }
        else
        {
            largest.ShouldBeLessThanOrEqualTo(16, "no commit takes more than MaxChunksPerCommit");
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Pause_GatherWindowHeldOpen_RunEndingIsCommittedWithoutWaitingOutTheWindow()
    {
        // The host's clock stands still: a gather window never elapses (and the scripted backend never reaches its
        // first token, so the session stays running). Before, a run ending waited out the window like a chunk.
        await using var host = await GenerationTestHost.StartAsync(
            new Dictionary<string, string?>
            {
                ["Generation:FlushInterval"] = "00:00:01",
                ["Scripted:TokensPerSecond"] = "20",
            },
            configure: services => services.AddSingleton<TimeProvider>(new FrozenTimeProvider()));
        var (session, _) = await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest("held open"));
        await host.WaitForStatusAsync(session.Id, GenerationStatus.Running);

        var paused = await host.Sessions.PauseAsync(session.Id, GenerationTestHost.Alice, wait: TimeSpan.FromSeconds(30))
            .WaitAsync(TimeSpan.FromSeconds(20), TimeProvider.System);

        paused.Status.ShouldBe(GenerationStatus.Paused, "the ending was committed without the gather window elapsing");
        (await host.Sessions.GetAsync(session.Id, null)).Status.ShouldBe(GenerationStatus.Paused);
    }

    /// <summary>A clock that never moves: its timers never fire, so only work, not time, ends a wait.</summary>
    private sealed class FrozenTimeProvider : TimeProvider
    {
        private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;

        public override DateTimeOffset GetUtcNow() => _now;

        public override long GetTimestamp() => 1_000_000;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime == TimeSpan.Zero)
            {
                ThreadPool.QueueUserWorkItem(_ => callback(state)); // due now: that needs no time to pass
            }

            return new NeverTimer();
        }

        private sealed class NeverTimer : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    private static async Task ExecuteAsync(string path, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<List<string[]>> ReadRowsAsync(string path, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string[]>();
        while (await reader.ReadAsync())
        {
            rows.Add(Enumerable.Range(0, reader.FieldCount).Select(i => Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)!).ToArray());
        }

        return rows;
    }

    private static async Task<List<(string SessionId, long FromSeq, long ToSeq, long Added)>> ReadAppendsAsync(string path)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT session_id, from_seq, to_seq, added FROM test_output_appends ORDER BY n";
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(string, long, long, long)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3)));
        }

        return rows;
    }
}
