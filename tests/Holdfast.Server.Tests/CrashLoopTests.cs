using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>
/// The crash loop (scripts/crash-loop.sh runs this test with more kills): the real <c>holdfast serve</c> under
/// generation and bridge-bot load is SIGKILLed at random moments, N times, and started again each time. After every
/// kill the database passes <c>PRAGMA integrity_check</c>; after every restart every acknowledged control is honoured
/// (a pause stays paused, a cancel cancelled, a resume is not paused), every bot keeps its last acknowledged message,
/// and no output that had been read back as stored is lost. At the end every session is driven to its end: none may
/// stay running, and each output equals an uninterrupted run of the same request, character for character, so the
/// tail a kill lost (at most one flush interval of unacknowledged output) was regenerated exactly.
/// Prints <c>crash-loop: N kills, 0 lost, 0 stuck, 0 corrupt</c>. Environment: HOLDFAST_CRASH_KILLS (default 3),
/// HOLDFAST_CRASH_SEED, HOLDFAST_CRASH_SUMMARY (a file that gets the summary line). Loopback only.
/// </summary>
[Collection(FaultChecksCollection.Name)]
public sealed class CrashLoopTests(ITestOutputHelper output, EndpointFuzzTests.Summary summary) : IClassFixture<EndpointFuzzTests.Summary>
{
    private const int Tokens = 300;
    private const int Bots = 4;

    private static readonly Dictionary<string, string> ServeEnvironment = new(StringComparer.Ordinal)
    {
        ["Scripted__TokensPerSecond"] = "100",
        ["Scripted__MaxTokens"] = Tokens.ToString(CultureInfo.InvariantCulture),
        ["Logging__LogLevel__Default"] = "Warning",
    };

    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(60);

    [Fact(Timeout = 3_600_000)]
    public async Task GenerationAndBotLoad_SigkilledRepeatedly_NothingAcknowledgedLost_NoneStuck_NoCorruption()
    {
        var kills = Environment.GetEnvironmentVariable("HOLDFAST_CRASH_KILLS") is { Length: > 0 } k ? int.Parse(k, CultureInfo.InvariantCulture) : 3;
        var seed = Environment.GetEnvironmentVariable("HOLDFAST_CRASH_SEED") is { Length: > 0 } s ? int.Parse(s, CultureInfo.InvariantCulture) : 20261203;
        output.WriteLine($"seed {seed} (rerun with HOLDFAST_CRASH_SEED={seed}), {kills} kills");
        var random = new Random(seed);
        using var data = new TempDirectory("hf-crash");
        var database = Path.Combine(data.Path, "holdfast.db");
        var port = ServeProcess.FreePort();
        var ledger = new Ledger();
        var problems = new List<string>();
        var lost = 0;
        var corrupt = 0;
        var serve = await ServeProcess.StartAsync(data.Path, port, ServeEnvironment);
        try
        {
            using (var client = UnixSocketHttp.Create(Path.Combine(data.Path, "holdfast.sock")))
            {
                for (var b = 0; b < Bots; b++)
                {
                    var id = $"crash-bot-{b}";
                    (await client.PostJsonAsync("/api/v1/bots", new StartBotRequest(id, "bridge"))).EnsureSuccessStatusCode();
                    ledger.Bots[id] = new TrackedBot();
                }
            }

            for (var kill = 1; kill <= kills; kill++)
            {
                using (var client = UnixSocketHttp.Create(Path.Combine(data.Path, "holdfast.sock")))
                {
                    // New sessions every round, so every kill lands while output is being written.
                    for (var i = 0; i < 3; i++)
                    {
                        await CreateAsync(client, ledger, ledger.Generations.Count);
                    }

                    using var load = new CancellationTokenSource();
                    var loops = new[]
                    {
                        Task.Run(() => ControlLoopAsync(client, ledger, new Random(random.Next()), load.Token)),
                        Task.Run(() => BotLoopAsync(client, ledger, new Random(random.Next()), load.Token)),
                        Task.Run(() => SnapshotLoopAsync(client, ledger, load.Token)),
                    };
                    await Task.Delay(TimeSpan.FromMilliseconds(random.Next(400, 2500)));
                    ledger.RunningAtKill += ledger.Generations.Values.Count(g => g.LastStatus == GenerationStatus.Running);
                    await serve.KillAsync();
                    serve.Dispose();
                    await load.CancelAsync();
                    await Task.WhenAll(loops);
                }

                var integrity = IntegrityCheck(database);
                if (!string.Equals(integrity, "ok", StringComparison.Ordinal))
                {
                    corrupt++;
                    problems.Add($"kill {kill}: integrity_check: {integrity}");
                }

                serve = await ServeProcess.StartAsync(data.Path, port, ServeEnvironment);
                using var after = UnixSocketHttp.Create(Path.Combine(data.Path, "holdfast.sock"));
                lost += await CheckAfterRestartAsync(after, ledger, kill, problems);
            }

            // The end: resume whatever is paused and let everything finish; whatever does not is stuck.
            using var final = UnixSocketHttp.Create(Path.Combine(data.Path, "holdfast.sock"));
            var ends = await Task.WhenAll(ledger.Generations.Keys.Select(id => DriveToEndAsync(final, id)));
            var stuck = ends.Count(e => !e.IsFinished);
            problems.AddRange(ends.Where(e => !e.IsFinished).Select(e => $"{e.Id} is still {e.Status} (desired {e.DesiredState}) {Settle.TotalSeconds:0} s after the last restart"));

            // Outputs continue exactly: every output and every stored snapshot read along the way is the
            // uninterrupted run's text (or a prefix of it, for cancelled sessions and snapshots).
            var references = await Task.WhenAll(ledger.Generations.Values.Select(g => ReferenceAsync(final, g.Index)));
            foreach (var (end, reference) in ends.Zip(references))
            {
                var tracked = ledger.Generations[end.Id];
                var text = end.Output ?? string.Empty;
                var exact = end.Status == GenerationStatus.Completed ? string.Equals(text, reference, StringComparison.Ordinal) : reference.StartsWith(text, StringComparison.Ordinal);
                if (!exact || tracked.Snapshots.Any(snapshot => !reference.StartsWith(snapshot, StringComparison.Ordinal)))
                {
                    corrupt++;
                    problems.Add($"{end.Id} ({end.Status}): its output is not the uninterrupted text (stored {text.Length} chars, uninterrupted {reference.Length})");
                }
            }

            var line = $"crash-loop: {kills} kills, {lost} lost, {stuck} stuck, {corrupt} corrupt";
            output.WriteLine(
                $"{ledger.Generations.Count} sessions ({ledger.RunningAtKill} running at the kills), {ledger.AcknowledgedControls} acknowledged controls, " +
                $"{ledger.AcknowledgedMessages} acknowledged bot messages, {ledger.SnapshotCount} stored outputs read back and checked");
            foreach (var problem in problems.Take(30))
            {
                output.WriteLine(problem);
            }

            output.WriteLine(line);
            summary.Print(line);
            if (Environment.GetEnvironmentVariable("HOLDFAST_CRASH_SUMMARY") is { Length: > 0 } file)
            {
                await File.WriteAllTextAsync(file, line + "\n");
            }

            problems.ShouldBeEmpty($"seed {seed}: {string.Join('\n', problems.Take(10))}");
            ledger.AcknowledgedControls.ShouldBeGreaterThan(0, "the loop acknowledged controls to check");
            ledger.AcknowledgedMessages.ShouldBeGreaterThan(0, "the loop acknowledged bot messages to check");
            ledger.RunningAtKill.ShouldBeGreaterThan(0, "the kills landed while sessions were generating");
        }
        finally
        {
            serve.Dispose();
        }
    }

    private static async Task CreateAsync(HttpClient client, Ledger ledger, int index)
    {
        var generation = await (await client.PostJsonAsync("/api/v1/generations", Request(index))).ReadAsync<Generation>();
        ledger.Generations[generation.Id] = new TrackedGeneration(index) { LastStatus = generation.Status };
    }

    private static CreateGenerationRequest Request(int index) => new(
        "scripted",
        [new InputMessage("user", string.Create(CultureInfo.InvariantCulture, $"Crash loop session {index}: a long story about harbours"))],
        Parameters: new GenerationParameters(MaxTokens: Tokens, Seed: 500 + index));

    /// <summary>Pauses, resumes and cancels at random; records what the server acknowledged and what was in flight.</summary>
    private static async Task ControlLoopAsync(HttpClient client, Ledger ledger, Random random, CancellationToken cancellationToken)
    {
        var ids = ledger.Generations.Keys.ToList();
        while (!cancellationToken.IsCancellationRequested)
        {
            var id = ids[random.Next(ids.Count)];
            var tracked = ledger.Generations[id];
            var action = random.Next(20) switch
            {
                < 8 => "pause",
                < 19 => "resume",
                _ => "cancel",
            };
            tracked.Uncertain = true;
            try
            {
                using var response = await client.PostAsync($"/api/v1/generations/{id}/{action}", content: null, cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    tracked.LastAcknowledged = action;
                    tracked.Uncertain = false;
                    Interlocked.Increment(ref ledger.AcknowledgedControls);
                }
                else if (response.StatusCode == HttpStatusCode.Conflict)
                {
                    // Refused (resume a completed session): nothing changed, the last acknowledged control still holds.
                    tracked.Uncertain = false;
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                return; // killed with the request in flight: it may or may not have been recorded
            }

            try
            {
                await Task.Delay(random.Next(10, 60), cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Bridge messages to the bots; the last acknowledged one per bot must survive a kill.</summary>
    private static async Task BotLoopAsync(HttpClient client, Ledger ledger, Random random, CancellationToken cancellationToken)
    {
        var ids = ledger.Bots.Keys.ToList();
        while (!cancellationToken.IsCancellationRequested)
        {
            var id = ids[random.Next(ids.Count)];
            var bot = ledger.Bots[id];
            var text = $"message {Interlocked.Increment(ref ledger.MessageCounter)} to {id}";
            bot.InFlight.Add(text);
            try
            {
                using var response = await client.PostJsonAsync($"/api/v1/bots/{id}/messages", new BotMessage(text));
                response.EnsureSuccessStatusCode();
                bot.LastAcknowledged = text;
                bot.InFlight.Clear();
                Interlocked.Increment(ref ledger.AcknowledgedMessages);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                return;
            }

            try
            {
                await Task.Delay(random.Next(5, 40), cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Reads each session back over and over: every output read is stored, so no later state may lack it.</summary>
    private static async Task SnapshotLoopAsync(HttpClient client, Ledger ledger, CancellationToken cancellationToken)
    {
        var ids = ledger.Generations.Keys.ToList();
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (var id in ids)
            {
                try
                {
                    using var response = await client.GetAsync($"/api/v1/generations/{id}", cancellationToken);
                    var generation = await response.ReadAsync<Generation>();
                    ledger.Generations[id].Observe(generation);
                    Interlocked.Increment(ref ledger.SnapshotCount);
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>After a restart: stored output kept, acknowledged controls honoured, bots' last messages kept. Returns what was lost.</summary>
    private static async Task<int> CheckAfterRestartAsync(HttpClient client, Ledger ledger, int kill, List<string> problems)
    {
        var lost = 0;
        var checks = ledger.Generations.Select(async pair =>
        {
            var (id, tracked) = (pair.Key, pair.Value);
            var expected = tracked.Uncertain ? null : tracked.LastAcknowledged;
            var kept = tracked.Longest;
            var generation = await Poll.UntilAsync(
                async () => await (await client.GetAsync($"/api/v1/generations/{id}")).ReadAsync<Generation>(),
                g => expected switch
                {
                    // A pause stored while the run committed its last token ends it completed (the state machine's
                    // Complete keeps the desired state): the pause had nothing left to stop.
                    "pause" => g.Status is GenerationStatus.Paused or GenerationStatus.Completed,
                    "cancel" => g.Status == GenerationStatus.Cancelled,
                    "resume" => g.Status is not (GenerationStatus.Paused or GenerationStatus.Cancelled),
                    _ => true,
                },
                $"{id} to honour its acknowledged {expected}",
                Settle).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null, TaskScheduler.Default);
            var problemsHere = new List<string>();
            if (generation is null)
            {
                var now = await (await client.GetAsync($"/api/v1/generations/{id}")).ReadAsync<Generation>();
                problemsHere.Add($"kill {kill}: {id}: the acknowledged {expected} was not honoured within {Settle.TotalSeconds:0} s: it is {now.Status} (desired {now.DesiredState}, pause reason {now.PauseReason}, version {now.Version}, {now.LastSeq} events)");
            }
            else
            {
                if (!(generation.Output ?? string.Empty).StartsWith(kept, StringComparison.Ordinal))
                {
                    problemsHere.Add($"kill {kill}: {id}: stored output lost ({kept.Length} chars had been read back, {generation.Output?.Length ?? 0} now)");
                }

                tracked.Observe(generation);
            }

            return problemsHere;
        });
        foreach (var found in await Task.WhenAll(checks))
        {
            lost += found.Count;
            problems.AddRange(found);
        }

        foreach (var (id, bot) in ledger.Bots)
        {
            var stored = await (await client.GetAsync($"/api/v1/bots/{id}")).ReadAsync<Bot>();
            var allowed = bot.InFlight.Append(bot.LastAcknowledged).ToList();
            if (stored.Status != BotStatus.Active || (bot.LastAcknowledged is not null && !allowed.Contains(stored.LastMessage, StringComparer.Ordinal)))
            {
                lost++;
                problems.Add($"kill {kill}: bot {id} is {stored.Status} with last message '{stored.LastMessage}', acknowledged '{bot.LastAcknowledged}'");
            }

            bot.LastAcknowledged = stored.LastMessage;
            bot.InFlight.Clear();
        }

        return lost;
    }

    private static async Task<Generation> DriveToEndAsync(HttpClient client, string id)
    {
        (await client.PostAsync($"/api/v1/generations/{id}/resume", content: null)).Dispose();
        try
        {
            return await Poll.UntilAsync(
                async () => await (await client.GetAsync($"/api/v1/generations/{id}")).ReadAsync<Generation>(),
                g => g.Status is GenerationStatus.Completed or GenerationStatus.Cancelled,
                $"{id} to finish",
                Settle);
        }
        catch (TimeoutException)
        {
            return await (await client.GetAsync($"/api/v1/generations/{id}")).ReadAsync<Generation>();
        }
    }

    private static async Task<string> ReferenceAsync(HttpClient client, int index)
    {
        var generation = await (await client.PostJsonAsync("/api/v1/generations", Request(index))).ReadAsync<Generation>();
        var done = await Poll.UntilAsync(
            async () => await (await client.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>(),
            g => g.Status == GenerationStatus.Completed,
            $"the uninterrupted run of session {index}",
            Settle);
        return done.Output ?? string.Empty;
    }

    private static string IntegrityCheck(string database)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA integrity_check";
        var lines = new List<string>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            lines.Add(reader.GetString(0));
        }

        return string.Join("; ", lines);
    }

    private sealed class Ledger
    {
        public ConcurrentDictionary<string, TrackedGeneration> Generations { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, TrackedBot> Bots { get; } = new(StringComparer.Ordinal);

#pragma warning disable SA1401, CA1051 // counters updated with Interlocked
        public int AcknowledgedControls;
        public int AcknowledgedMessages;
        public int SnapshotCount;
        public int MessageCounter;
        public int RunningAtKill;
#pragma warning restore SA1401, CA1051
    }

    private sealed class TrackedGeneration(int index)
    {
        public int Index { get; } = index;

        public string? LastAcknowledged { get; set; }

        /// <summary>A control was sent after the last acknowledged one and got no answer: either outcome is right.</summary>
        public bool Uncertain { get; set; }

        public GenerationStatus LastStatus { get; set; }

        /// <summary>The longest output read back as stored: it must never shrink.</summary>
        public string Longest { get; private set; } = string.Empty;

        public ConcurrentBag<string> Snapshots { get; } = [];

        public void Observe(Generation generation)
        {
            var text = generation.Output ?? string.Empty;
            LastStatus = generation.Status;
            if (text.Length > Longest.Length)
            {
                Longest = text;
                Snapshots.Add(text);
            }
        }
    }

    private sealed class TrackedBot
    {
        public string? LastAcknowledged { get; set; }

        public List<string> InFlight { get; } = [];
    }
}
