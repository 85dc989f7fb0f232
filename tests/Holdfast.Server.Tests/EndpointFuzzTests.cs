using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Xunit.Abstractions;

namespace Holdfast.Server.Tests;

/// <summary>
/// A short, seeded fuzz run over every endpoint the server maps (read from its routing table, so a new endpoint is
/// fuzzed without being listed here): random bytes, deep JSON, huge strings, invalid UTF-8, wrong content types,
/// wrong types in known fields, odd ids, queries and headers, as an admin, a user, the socket and nobody. No answer
/// may be a 5xx, the server must keep answering, nothing may hang, and data the requests do not name (another user's
/// generation with its log and audit trail, and a bot) is unchanged afterwards, in a file that passes
/// <c>PRAGMA integrity_check</c>. Bounded in count and time; loopback only. Rerun a failure with
/// HOLDFAST_FUZZ_SEED=&lt;seed&gt;. scripts/fuzz.sh runs this test for a given time: HOLDFAST_FUZZ_SECONDS (then no
/// request cap) and HOLDFAST_FUZZ_SUMMARY (a file that gets the summary line).
/// </summary>
public sealed partial class EndpointFuzzTests(ITestOutputHelper output, EndpointFuzzTests.Summary summary) : IClassFixture<EndpointFuzzTests.Summary>
{
    private const string SeedVariable = "HOLDFAST_FUZZ_SEED";
    private const int DefaultMaxRequests = 2000;
    private static readonly TimeSpan DefaultMaxDuration = TimeSpan.FromSeconds(75);
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(20);

    private static readonly string[] ContentTypes =
    [
        "application/json", "application/json", "application/json; charset=utf-8", "text/plain", "application/octet-stream",
        "application/xml", "multipart/form-data; boundary=xyz", "application/x-www-form-urlencoded", "application/json; charset=latin1",
        "image/png", "*/*", "application/problem+json",
    ];

    private static readonly string[] Fields =
    [
        "model", "input", "messages", "instructions", "session_id", "bot_type", "qr_data", "text", "state", "detail", "user",
        "admin", "reason", "token", "owner", "at_seq", "parameters", "stream", "background", "tools", "previous_response_id",
        "previous_session_id", "metadata", "max_output_tokens", "max_tokens", "temperature", "seed", "stop", "backend", "content",
        "role", "top_p", "n", "store",
    ];

    // The timeout is a backstop for the long form (scripts/fuzz.sh --seconds up to 3000); each request has its own.
    [Fact(Timeout = 3_300_000)]
    public async Task EveryEndpoint_RandomInput_No5xx_NoCrash_StoredDataUnchanged()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable(SeedVariable), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 20261203;
        var seconds = int.TryParse(Environment.GetEnvironmentVariable("HOLDFAST_FUZZ_SECONDS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : 0;
        var maxRequests = seconds > 0 ? int.MaxValue : DefaultMaxRequests;
        var maxDuration = seconds > 0 ? TimeSpan.FromSeconds(seconds) : DefaultMaxDuration;
        output.WriteLine($"seed {seed} (rerun with {SeedVariable}={seed})");
        var random = new Random(seed);
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Scripted:TokensPerSecond"] = "0",
            ["Scripted:MaxTokens"] = "20",
            ["Server:RateLimitPerSecond"] = "100000",
            ["Server:RateLimitBurst"] = "100000",
            ["Server:MaxControlWait"] = "00:00:02",
        });
        using var socket = server.Socket();
        using var admin = server.Tcp(await server.CreateKeyAsync("root", admin: true));
        using var user = server.Tcp(await server.CreateKeyAsync("alice"));
        using var nobody = server.Tcp();
        var generation = await (await user.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", "fuzz")]))).ReadAsync<Holdfast.Client.Models.Generation>();
        (await user.PostJsonAsync("/api/v1/bots", new StartBotRequest("fuzz-bot", "web"))).EnsureSuccessStatusCode();
        var ids = new[] { generation.Id, "resp_" + generation.Id, "fuzz-bot", "nope", "resp_nope" };

        // Data no request names: bob's finished generation (row, log, audit trail) and bot. It must read back the same.
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));
        var sentinel = await (await bob.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", "sentinel")]))).ReadAsync<Holdfast.Client.Models.Generation>();
        await Poll.UntilAsync(async () => (await (await bob.GetAsync($"/api/v1/generations/{sentinel.Id}")).ReadAsync<Holdfast.Client.Models.Generation>()).IsFinished, "the sentinel generation finishes");
        (await bob.PostJsonAsync("/api/v1/bots", new StartBotRequest("sentinel-bot", "bridge"))).EnsureSuccessStatusCode();
        (await bob.PostJsonAsync("/api/v1/bots/sentinel-bot/messages", new BotMessage("sentinel message"))).EnsureSuccessStatusCode();
        var sentinelPaths = new[] { $"/api/v1/generations/{sentinel.Id}", $"/api/v1/generations/{sentinel.Id}/log?limit=1000", $"/api/v1/generations/{sentinel.Id}/events", "/api/v1/bots/sentinel-bot", "/api/v1/bots/sentinel-bot/events" };
        var sentinelBefore = await ReadAllAsync(bob, sentinelPaths);

        var endpoints = ((IEndpointRouteBuilder)server.App).DataSources
            .SelectMany(d => d.Endpoints)
            .OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (Method: m, Pattern: e.RoutePattern.RawText ?? "/")))
            .Distinct()
            .OrderBy(e => e.Pattern, StringComparer.Ordinal).ThenBy(e => e.Method, StringComparer.Ordinal)
            .ToList();
        endpoints.Count.ShouldBeGreaterThan(30, "the routing table lists every endpoint");
        output.WriteLine($"{endpoints.Count} endpoints: {string.Join(", ", endpoints.Select(e => $"{e.Method} {e.Pattern}"))}");

        var clients = new[] { admin, user, socket, nobody };
        var requests = 0;
        var cut = 0;
        var serverErrors = new List<string>();
        var crashes = new List<string>();
        var started = TimeProvider.System.GetTimestamp();
        while (requests < maxRequests && TimeProvider.System.GetElapsedTime(started) < maxDuration && crashes.Count == 0)
        {
            // Every endpoint once per round, in a shuffled order, so each is fuzzed about equally often.
            foreach (var (method, pattern) in endpoints.OrderBy(_ => random.Next()).ToList())
            {
                if (requests >= maxRequests || TimeProvider.System.GetElapsedTime(started) >= maxDuration)
                {
                    break;
                }

                var client = clients[random.Next(clients.Length)];
                using var request = BuildRequest(random, method, pattern, ids);
                var what = $"{method} {request.RequestUri} ({request.Content?.Headers.ContentType?.ToString() ?? "no body"}, {(client == nobody ? "no key" : client == socket ? "socket" : client == admin ? "admin" : "user")})";
                requests++;
                using var timeout = new CancellationTokenSource(RequestTimeout);
                try
                {
                    using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                    if ((int)response.StatusCode >= 500)
                    {
                        var body = await ReadSomeAsync(response, timeout.Token);
                        serverErrors.Add($"{(int)response.StatusCode} {what}: {body}");
                    }
                }
                catch (OperationCanceledException) when (timeout.IsCancellationRequested)
                {
                    crashes.Add($"no answer within {RequestTimeout.TotalSeconds} s: {what}");
                }
                catch (HttpRequestException ex) when (ex.InnerException is IOException && request.Content is not null)
                {
                    // The server answered (e.g. 400 for a bad id) without reading the whole body and closed the
                    // connection while the client was still sending it: not a crash as long as the server answers on.
                    cut++;
                    await ShouldStillAnswerAsync(socket, crashes, $"after an answer before the body was read: {what}");
                }
                catch (HttpRequestException ex)
                {
                    crashes.Add($"{ex.Message}: {what}");
                }

                if (requests % 100 == 0)
                {
                    await ShouldStillAnswerAsync(socket, crashes, $"after {requests} requests");
                }
            }
        }

        await ShouldStillAnswerAsync(socket, crashes, "at the end");
        var sentinelAfter = await ReadAllAsync(bob, sentinelPaths);
        var changed = sentinelPaths.Where((_, i) => !string.Equals(sentinelBefore[i], sentinelAfter[i], StringComparison.Ordinal)).ToList();
        var integrity = IntegrityCheck(server.DatabasePath);
        foreach (var line in serverErrors.Take(20).Concat(crashes.Take(20)))
        {
            output.WriteLine(line);
        }

        output.WriteLine($"{cut} answered before their body was read (connection closed while sending)");
        var result = $"fuzz: {requests} requests, {serverErrors.Count} 5xx, {crashes.Count} crashes";
        output.WriteLine($"stored data: {(changed.Count == 0 ? "unchanged" : "CHANGED at " + string.Join(", ", changed))}, integrity_check {integrity}");
        output.WriteLine(result);
        summary.Print(result);
        if (Environment.GetEnvironmentVariable("HOLDFAST_FUZZ_SUMMARY") is { Length: > 0 } summaryFile)
        {
            await File.WriteAllTextAsync(summaryFile, $"stored data {(changed.Count == 0 ? "unchanged" : "changed")}, integrity_check {integrity}\n{result}\n");
        }

        changed.ShouldBeEmpty("requests that named other data changed bob's generation or bot");
        integrity.ShouldBe("ok");
        serverErrors.ShouldBeEmpty($"seed {seed}: {string.Join('\n', serverErrors.Take(10))}");
        crashes.ShouldBeEmpty($"seed {seed}: {string.Join('\n', crashes.Take(10))}");
        requests.ShouldBeGreaterThanOrEqualTo(endpoints.Count * 3, "every endpoint got a few requests");
    }

    private static async Task<string[]> ReadAllAsync(HttpClient client, string[] paths) =>
        await Task.WhenAll(paths.Select(async path =>
        {
            using var response = await client.GetAsync(path);
            return $"{(int)response.StatusCode} {RenewedLeaseExpiry().Replace(await response.Content.ReadAsStringAsync(), "\"lease_expires_at\":\"(renewed)\"")}";
        }));

    /// <summary>A held bot's lease expiry, which the holder renews every few seconds (its node and epoch are compared).</summary>
    [System.Text.RegularExpressions.GeneratedRegex("\"lease_expires_at\":\"[^\"]*\"", System.Text.RegularExpressions.RegexOptions.CultureInvariant, 1000)]
    private static partial System.Text.RegularExpressions.Regex RenewedLeaseExpiry();

    private static string IntegrityCheck(string database)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA integrity_check";
        return Convert.ToString(command.ExecuteScalar(), CultureInfo.InvariantCulture) ?? "(nothing)";
    }

    private static async Task ShouldStillAnswerAsync(HttpClient socket, List<string> crashes, string when)
    {
        try
        {
            using var health = await socket.GetAsync("/healthz");
            if (health.StatusCode != HttpStatusCode.OK)
            {
                crashes.Add($"/healthz answered {(int)health.StatusCode} {when}");
            }
        }
        catch (HttpRequestException ex)
        {
            crashes.Add($"/healthz failed {when}: {ex.Message}");
        }
    }

    private static async Task<string> ReadSomeAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            return body.Length <= 400 ? body : body[..400];
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            return $"(body not read: {ex.GetType().Name})";
        }
    }

    private static HttpRequestMessage BuildRequest(Random random, string method, string pattern, string[] ids)
    {
        var path = RouteParameter().Replace(pattern, _ => Uri.EscapeDataString(PickId(random, ids)));
        var query = random.Next(3) == 0 ? "?" + RandomQuery(random) : string.Empty;
        var request = new HttpRequestMessage(new HttpMethod(method), path.Length == 0 ? "/" : path + query);
        if (method is "POST" or "PUT" or "PATCH" || random.Next(6) == 0)
        {
            request.Content = RandomBody(random);
        }

        switch (random.Next(8))
        {
            case 0:
                request.Headers.TryAddWithoutValidation("Last-Event-ID", Ascii(PickWeird(random)));
                break;
            case 1:
                request.Headers.TryAddWithoutValidation("Idempotency-Key", random.Next(2) == 0 ? new string('k', 5000) : Ascii(PickWeird(random)));
                break;
            case 2:
                request.Headers.TryAddWithoutValidation("Accept", random.Next(2) == 0 ? "text/event-stream" : "application/xml");
                break;
            case 3:
                request.Headers.TryAddWithoutValidation("X-Holdfast-Device-Key", Ascii(PickWeird(random)));
                break;
        }

        return request;
    }

    /// <summary>What an HTTP client can put in a header (printable ASCII); the server gets odd values, not a client error.</summary>
    private static string Ascii(string value) => new(value.Where(c => c is >= ' ' and < '\u007f').ToArray());

    private static string PickId(Random random, string[] ids) => random.Next(4) switch
    {
        0 or 1 => ids[random.Next(ids.Length)],
        _ => PickWeird(random),
    };

    private static string PickWeird(Random random) => random.Next(12) switch
    {
        0 => string.Empty,
        1 => new string('a', random.Next(100, 3000)),
        2 => "..%2F..%2Fetc%2Fpasswd",
        3 => "\u0000\u0001\u001f",
        4 => "ü🦀\u202e",
        5 => "-1",
        6 => "99999999999999999999999",
        7 => "resp_" + new string('9', 40),
        8 => random.Next(4) switch
        {
            0 => "' OR 1=1 --",
            1 => "'; DROP TABLE generation_sessions; --",
            2 => "<script>alert(1)</script>",
            _ => "${jndi:ldap://127.0.0.1/x}",
        },
        9 => "1e308",
        10 => "gen_" + Guid.NewGuid().ToString("N"),
        _ => Convert.ToBase64String(RandomBytes(random, random.Next(1, 40))),
    };

    private static string RandomQuery(Random random)
    {
        var names = new[] { "after", "before", "limit", "cursor", "status", "format", "wait", "stream", "starting_after", "at_seq", "include", "order" };
        return string.Join('&', Enumerable.Range(0, random.Next(1, 4)).Select(_ =>
            $"{names[random.Next(names.Length)]}={Uri.EscapeDataString(random.Next(3) == 0 ? random.Next(-5, 1000).ToString(CultureInfo.InvariantCulture) : PickWeird(random))}"));
    }

    private static HttpContent RandomBody(Random random)
    {
        byte[] bytes = random.Next(9) switch
        {
            0 => RandomBytes(random, random.Next(0, 4096)),
            1 => Encoding.UTF8.GetBytes(new string('[', random.Next(100, 20_000)) + new string(']', random.Next(0, 100))),
            2 => Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", random.Next(100, 5000))) + "1" + new string('}', 10)),
            3 => Encoding.UTF8.GetBytes($"{{\"{Fields[random.Next(Fields.Length)]}\":\"{new string('x', random.Next(100_000, 1_000_000))}\"}}"),
            4 => InvalidUtf8Json(random),
            5 => Encoding.UTF8.GetBytes("{\"" + Fields[random.Next(Fields.Length)] + "\":\"\\ud800\\udc00\\ud800\",\"x\":\"\\u0000\"}"),
            _ => Encoding.UTF8.GetBytes(RandomObject(random)),
        };
        HttpContent content = random.Next(100) == 0 ? new SlowContent(bytes, random.Next(2, 4)) : new ByteArrayContent(bytes);
        var type = random.Next(5) == 0 ? null : ContentTypes[random.Next(ContentTypes.Length)];
        if (type is not null)
        {
            content.Headers.TryAddWithoutValidation("Content-Type", type);
        }
        else
        {
            content.Headers.ContentType = null;
        }

        return content;
    }

    private static byte[] InvalidUtf8Json(Random random)
    {
        using var stream = new MemoryStream();
        var field = Fields[random.Next(Fields.Length)];
        stream.Write(Encoding.UTF8.GetBytes($"{{\"model\":\"scripted\",\"{field}\":\""));
        stream.Write(random.Next(3) switch
        {
            0 => [0xFF, 0xFE, 0xFD],
            1 => [0xC3],
            _ => [0xED, 0xA0, 0x80],
        });
        stream.Write(Encoding.UTF8.GetBytes("\",\"input\":\"hi\"}"));
        if (random.Next(2) == 0)
        {
            // Invalid UTF-8 in a property name too.
            stream.Write(Encoding.UTF8.GetBytes("{\""));
            stream.Write([0xC0, 0xAF]);
            stream.Write(Encoding.UTF8.GetBytes("\":1}"));
        }

        return stream.ToArray();
    }

    private static string RandomObject(Random random)
    {
        var builder = new StringBuilder("{");
        var count = random.Next(0, 6);
        var used = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            var field = random.Next(4) == 0 ? PickWeird(random).Replace("\"", string.Empty, StringComparison.Ordinal).Replace("\\", string.Empty, StringComparison.Ordinal) : Fields[random.Next(Fields.Length)];
            field = new string(field.Where(c => c >= ' ').ToArray());
            if (!used.Add(field))
            {
                continue;
            }

            if (builder.Length > 1)
            {
                builder.Append(',');
            }

            builder.Append('"').Append(field).Append("\":").Append(RandomValue(random, 0));
        }

        if (random.Next(4) == 0)
        {
            // The fields a valid request would have, so the fuzz reaches past "missing model".
            builder.Append(builder.Length > 1 ? "," : string.Empty).Append("\"model\":\"scripted\"");
        }

        return builder.Append('}').ToString();
    }

    private static string RandomValue(Random random, int depth) => random.Next(depth > 3 ? 8 : 12) switch
    {
        0 => "null",
        1 => "true",
        2 => random.Next(-1000, 1000).ToString(CultureInfo.InvariantCulture),
        3 => "1e400",
        4 => "-0.0000001",
        5 => "99999999999999999999999999",
        6 => System.Text.Json.JsonSerializer.Serialize(PickWeird(random)),
        7 => "\"scripted\"",
        8 => "[" + string.Join(',', Enumerable.Range(0, random.Next(0, 4)).Select(_ => RandomValue(random, depth + 1))) + "]",
        9 => "{\"role\":" + RandomValue(random, depth + 1) + ",\"content\":" + RandomValue(random, depth + 1) + "}",
        10 => "[{\"role\":\"user\",\"content\":" + RandomValue(random, depth + 1) + "}]",
        _ => "{\"type\":" + RandomValue(random, depth + 1) + ",\"text\":" + RandomValue(random, depth + 1) + "}",
    };

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A body sent slowly, in pieces 150 ms apart (a slow or stalling client).</summary>
    private sealed class SlowContent(byte[] bytes, int pieces) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            var size = Math.Max(1, bytes.Length / pieces);
            for (var offset = 0; offset < bytes.Length; offset += size)
            {
                await stream.WriteAsync(bytes.AsMemory(offset, Math.Min(size, bytes.Length - offset)));
                await stream.FlushAsync();
                await Task.Delay(150);
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = bytes.Length;
            return true;
        }
    }

    /// <summary>Prints the run's summary line in the normal test output (an xunit diagnostic message; see xunit.runner.json).</summary>
    public sealed class Summary(IMessageSink sink)
    {
        public void Print(string line) => sink.OnMessage(new Xunit.Sdk.DiagnosticMessage(line));
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\{[^}]+\}", System.Text.RegularExpressions.RegexOptions.CultureInvariant, 1000)]
    private static partial System.Text.RegularExpressions.Regex RouteParameter();
}
