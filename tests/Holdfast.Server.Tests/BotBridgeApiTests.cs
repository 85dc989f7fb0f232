using System.Net;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

/// <summary>The bridge endpoints a bot runtime (the Node package) uses: commands, message times, connection, login state.</summary>
public sealed class BotBridgeApiTests
{
    [Fact(Timeout = 60_000)]
    public async Task AuthState_EmptyPut_ClearsTheState()
    {
        await using var server = await TestServer.StartAsync();
        using var runtime = server.Tcp(await server.CreateKeyAsync("alice"));
        await runtime.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"));

        (await runtime.PutAsync("/api/v1/bots/wa-1/auth-state", Octets([1, 2, 3]))).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await runtime.PutAsync("/api/v1/bots/wa-1/auth-state", Octets([]))).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        (await runtime.GetAsync("/api/v1/bots/wa-1/auth-state")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact(Timeout = 60_000)]
    public async Task Messages_WithReceivedAt_OnlyMoveForward()
    {
        await using var server = await TestServer.StartAsync();
        using var runtime = server.Tcp(await server.CreateKeyAsync("alice"));
        await runtime.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"));
        var newer = DateTimeOffset.Parse("2026-12-01T10:00:05Z", System.Globalization.CultureInfo.InvariantCulture);

        var first = await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/messages", new BotMessage("newer", newer))).ReadAsync<Bot>();
        var second = await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/messages", new BotMessage("older", newer.AddSeconds(-4)))).ReadAsync<Bot>();

        first.LastMessage.ShouldBe("newer");
        second.LastMessage.ShouldBe("newer");
        second.Version.ShouldBe(first.Version);
        var third = await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/messages", new BotMessage("newest", newer.AddSeconds(1)))).ReadAsync<Bot>();
        third.LastMessage.ShouldBe("newest");
    }

    [Fact(Timeout = 60_000)]
    public async Task Connection_WithReasonAndCode_IsShownInTheDetail()
    {
        await using var server = await TestServer.StartAsync();
        using var runtime = server.Tcp(await server.CreateKeyAsync("alice"));
        await runtime.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"));

        var bot = await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/connection", new BotConnectionUpdate("disconnected", Reason: "connection lost", Code: 428))).ReadAsync<Bot>();

        bot.ConnectionDetail.ShouldBe("disconnected: connection lost (428)");
    }

    [Fact(Timeout = 60_000)]
    public async Task Commands_EndFromAnotherClient_ReachesTheListeningRuntime_AndAMissedEndIsSentOnConnect()
    {
        await using var server = await TestServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        using var runtime = server.Tcp(key);
        await runtime.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"));

        using var listening = server.Tcp(key);
        using var stream = await listening.GetAsync("/api/v1/bots/wa-1/commands", HttpCompletionOption.ResponseHeadersRead);
        stream.StatusCode.ShouldBe(HttpStatusCode.OK);
        await using var body = await stream.Content.ReadAsStreamAsync();
        using var reader = new StreamReader(body);
        using (var admin = server.Socket())
        {
            (await admin.PostAsync("/api/v1/bots/wa-1/end", null)).StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        var (id, data) = await ReadCommandAsync(reader);
        data.ShouldContain("\"command\":\"end\"");
        data.ShouldContain("\"session_id\":\"wa-1\"");
        var ended = await (await runtime.GetAsync("/api/v1/bots/wa-1")).ReadAsync<Bot>();
        id.ShouldBe(ended.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // A runtime that connects after the end hears it at once; one that has seen it (Last-Event-ID) does not.
        using var late = await runtime.GetAsync("/api/v1/bots/wa-1/commands", HttpCompletionOption.ResponseHeadersRead);
        using var lateReader = new StreamReader(await late.Content.ReadAsStreamAsync());
        (await ReadCommandAsync(lateReader)).Data.ShouldContain("\"command\":\"end\"");

        using var seen = new HttpRequestMessage(HttpMethod.Get, "/api/v1/bots/wa-1/commands");
        seen.Headers.Add("Last-Event-ID", id);
        using var seenResponse = await runtime.SendAsync(seen, HttpCompletionOption.ResponseHeadersRead);
        using var seenReader = new StreamReader(await seenResponse.Content.ReadAsStreamAsync());
        await runtime.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"));
        (await ReadCommandAsync(seenReader)).Data.ShouldContain("\"command\":\"start\"");
    }

    [Fact(Timeout = 60_000)]
    public async Task Commands_OfAnotherUsersBot_AreNotFound()
    {
        await using var server = await TestServer.StartAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));
        await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"));

        (await bob.GetAsync("/api/v1/bots/wa-1/commands", HttpCompletionOption.ResponseHeadersRead)).StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact(Timeout = 60_000)]
    public async Task AuthKeys_StoredPerKeyInOneTransaction_NullDeletes_EncryptedAndOwnerOnly()
    {
        await using var server = await TestServer.StartAsync();
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        using var bob = server.Tcp(await server.CreateKeyAsync("bob"));
        await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"));

        var write = await alice.PostAsync("/api/v1/bots/wa-1/auth-keys", Http.Json("""
            {"pre-key": {"1": {"private": "c2VjcmV0LXByZS1rZXktb25l"}, "2": "two", "3": 3}, "session": {"a@s.whatsapp.net.0": [1, 2]}}
            """));
        write.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await alice.PostAsync("/api/v1/bots/wa-1/auth-keys", Http.Json("""{"pre-key": {"2": null, "3": "three"}}"""))).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        var read = await alice.GetStringAsync("/api/v1/bots/wa-1/auth-keys?type=pre-key&ids=1,2,3,4");
        read.ShouldBe("""{"pre-key":{"1":{"private":"c2VjcmV0LXByZS1rZXktb25l"},"3":"three"}}""");
        (await alice.GetStringAsync("/api/v1/bots/wa-1/auth-keys?type=session&ids=a@s.whatsapp.net.0")).ShouldBe("""{"session":{"a@s.whatsapp.net.0":[1,2]}}""");

        // A request with one bad key changes nothing.
        (await alice.PostAsync("/api/v1/bots/wa-1/auth-keys", Http.Json("""{"pre-key": {"1": null}, "bad type!": {"x": 1}}"""))).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await alice.GetStringAsync("/api/v1/bots/wa-1/auth-keys?type=pre-key&ids=1")).ShouldContain("c2VjcmV0LXByZS1rZXktb25l");

        (await bob.GetAsync("/api/v1/bots/wa-1/auth-keys?type=pre-key&ids=1")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await bob.PostAsync("/api/v1/bots/wa-1/auth-keys", Http.Json("""{"pre-key": {"1": null}}"""))).StatusCode.ShouldBe(HttpStatusCode.NotFound);

        // One row per key, each encrypted; one audit event per write, naming counts only.
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={server.DatabasePath};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var count = connection.CreateCommand();
        count.CommandText = "SELECT COUNT(*) FROM bot_auth_keys WHERE session_id = 'wa-1'";
        ((long)(await count.ExecuteScalarAsync())!).ShouldBe(3);
        await using var values = connection.CreateCommand();
        values.CommandText = "SELECT value FROM bot_auth_keys";
        await using (var reader = await values.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                System.Text.Encoding.UTF8.GetString((byte[])reader.GetValue(0)).ShouldNotContain("c2VjcmV0");
            }
        }

        var events = await alice.GetStringAsync("/api/v1/bots/wa-1/events");
        System.Text.RegularExpressions.Regex.Count(events, "bot.auth_keys").ShouldBe(2);
        events.ShouldContain("4 keys stored, 0 deleted");
        events.ShouldNotContain("c2VjcmV0");
    }

    [Fact(Timeout = 60_000)]
    public async Task Connection_StateMachine_IllegalMovesAre409_MessagesDoNotChangeIt_ConnectedClearsQr()
    {
        await using var server = await TestServer.StartAsync();
        using var runtime = server.Tcp(await server.CreateKeyAsync("alice"));
        var started = await (await runtime.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"))).ReadAsync<Bot>();
        started.Connection.ShouldNotBeNull().State.ShouldBe("starting");

        await runtime.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@qr"));
        var connected = await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/connection", new BotConnectionUpdate("connected"))).ReadAsync<Bot>();
        connected.QrData.ShouldBeNull();
        connected.Connection.ShouldNotBeNull().State.ShouldBe("connected");

        // A QR (or awaiting_qr) while connected is refused; nothing changes.
        await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/connection", new BotConnectionUpdate("awaiting_qr"))).ShouldBeProblemAsync(HttpStatusCode.Conflict);
        await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@new"))).ShouldBeProblemAsync(HttpStatusCode.Conflict);
        await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/connection", new BotConnectionUpdate("connecting"))).ShouldBeProblemAsync(HttpStatusCode.BadRequest);
        var message = await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/messages", new BotMessage("hi"))).ReadAsync<Bot>();
        message.Connection.ShouldBe(connected.Connection);
        message.QrData.ShouldBeNull();

        // Logged out: status stays active (only an end makes it inactive); it must pair again before connecting.
        var loggedOut = await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/connection", new BotConnectionUpdate("logged_out", Reason: "logged out on the phone", Code: 401))).ReadAsync<Bot>();
        loggedOut.Status.ShouldBe(BotStatus.Active);
        loggedOut.Connection.ShouldNotBeNull().ShouldSatisfyAllConditions(
            c => c.State.ShouldBe("logged_out"),
            c => c.Reason.ShouldBe("logged out on the phone"),
            c => c.Code.ShouldBe(401));
        await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/connection", new BotConnectionUpdate("connected"))).ShouldBeProblemAsync(HttpStatusCode.Conflict);
        (await runtime.PostJsonAsync("/api/v1/bots/wa-1/connection", new BotConnectionUpdate("awaiting_qr"))).StatusCode.ShouldBe(HttpStatusCode.OK);

        var ended = await (await runtime.PostAsync("/api/v1/bots/wa-1/end", null)).ReadAsync<Bot>();
        ended.Status.ShouldBe(BotStatus.Inactive);
        ended.Connection.ShouldNotBeNull().State.ShouldBe("disconnected");
    }

    [Fact(Timeout = 90_000)]
    public async Task Qr_NumberedLongPoll_204WhenNoneCame_NewerOneAnswersTheWaitingRequest()
    {
        await using var server = await TestServer.StartAsync();
        using var runtime = server.Tcp(await server.CreateKeyAsync("alice"));
        await runtime.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"));

        var first = await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@first"))).ReadAsync<Bot>();
        first.QrSeq.ShouldBe(1);
        using (var current = await runtime.GetAsync("/api/v1/bots/wa-1/qr?format=text&after_seq=0"))
        {
            current.StatusCode.ShouldBe(HttpStatusCode.OK);
            current.Headers.GetValues("X-Qr-Seq").ShouldBe(["1"]);
        }

        (await runtime.GetAsync("/api/v1/bots/wa-1/qr?format=text&after_seq=1&wait=0.5")).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        var waiting = runtime.GetAsync("/api/v1/bots/wa-1/qr?format=text&after_seq=1&wait=30");
        await Task.Delay(300);
        waiting.IsCompleted.ShouldBeFalse("it waits for a newer QR");
        var second = await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@second"))).ReadAsync<Bot>();
        using var answered = await waiting;
        answered.StatusCode.ShouldBe(HttpStatusCode.OK);
        answered.Headers.GetValues("X-Qr-Seq").ShouldBe(["2"]);
        second.QrSeq.ShouldBe(2);
        second.QrAttempts.ShouldBe(2);
        var connected = await (await runtime.PostJsonAsync("/api/v1/bots/wa-1/connection", new BotConnectionUpdate("connected"))).ReadAsync<Bot>();
        connected.QrAttempts.ShouldBe(0);
        connected.QrSeq.ShouldBe(2);
    }

    [Fact(Timeout = 90_000)]
    public async Task Qr_AfterItsLifetime_And_StoredBeforeARestart_Is410_UntilANewOneArrives()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>(StringComparer.Ordinal) { ["Bots:QrLifetime"] = "00:00:01" });
        var key = await server.CreateKeyAsync("alice");
        using (var runtime = server.Tcp(key))
        {
            await runtime.PostJsonAsync("/api/v1/bots", new StartBotRequest("wa-1", "bridge"));
            await runtime.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@short-lived"));
            (await runtime.GetAsync("/api/v1/bots/wa-1/qr?format=text")).StatusCode.ShouldBe(HttpStatusCode.OK);
            await Poll.UntilAsync(
                async () => (await runtime.GetAsync("/api/v1/bots/wa-1/qr?format=text")).StatusCode == HttpStatusCode.Gone,
                "the QR to expire after its 1 s lifetime",
                TimeSpan.FromSeconds(20));
        }

        await server.RestartAsync();
        using (var runtime = server.Tcp(key))
        {
            await runtime.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@before-restart"));
        }

        await server.RestartAsync();
        using var after = server.Tcp(key);
        var stored = await (await after.GetAsync("/api/v1/bots/wa-1")).ReadAsync<Bot>();
        stored.QrData.ShouldBe("2@before-restart", "restore does not clear a stored QR");
        var gone = await (await after.GetAsync("/api/v1/bots/wa-1/qr?format=text")).ShouldBeProblemAsync(HttpStatusCode.Gone);
        gone.Detail.ShouldNotBeNull().ShouldContain("after_seq=2");
        await after.PostJsonAsync("/api/v1/bots/wa-1/qr", new BotQrUpdate("2@after-restart"));
        (await after.GetAsync("/api/v1/bots/wa-1/qr?format=text")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact(Timeout = 90_000)]
    public async Task Qr_OfAnUnpairedWebBot_IsRenewedWhileItWaits()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>(StringComparer.Ordinal) { ["Bots:QrLifetime"] = "00:00:02" });
        using var alice = server.Tcp(await server.CreateKeyAsync("alice"));
        var started = await (await alice.PostJsonAsync("/api/v1/bots", new StartBotRequest("web-1", "web"))).ReadAsync<Bot>();

        var renewed = await Poll.UntilAsync(
            async () => await (await alice.GetAsync("/api/v1/bots/web-1")).ReadAsync<Bot>(),
            bot => bot.QrSeq > started.QrSeq,
            "the web connector to renew its QR",
            TimeSpan.FromSeconds(20));

        renewed.QrData.ShouldNotBe(started.QrData);
        (await alice.GetAsync("/api/v1/bots/web-1/qr?format=text")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    private static ByteArrayContent Octets(byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        return content;
    }

    /// <summary>Reads lines until one complete <c>command</c> event (skipping the retry hint and heartbeats).</summary>
    internal static async Task<(string? Id, string Data)> ReadCommandAsync(StreamReader reader)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        string? id = null;
        string? eventName = null;
        string? data = null;
        while (true)
        {
            var line = await reader.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("The command stream ended.");
            if (line.Length == 0)
            {
                if (eventName == "command" && data is not null)
                {
                    return (id, data);
                }

                (eventName, data) = (null, null);
            }
            else if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = line[4..];
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                eventName = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data = line[6..];
            }
        }
    }
}
