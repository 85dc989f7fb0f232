using System.Text.Json;
using Holdfast.Client;

namespace Holdfast.Cli.Tests;

/// <summary><c>holdfast webhooks add|ls|deliveries|rm</c> against a real server process (the socket, the local admin).</summary>
public sealed class WebhookCommandTests
{
    [Fact(Timeout = 180_000)]
    public async Task Webhooks_AddLsDeliveriesRm_ThroughTheServer()
    {
        await using var server = await ServerProcess.StartNewAsync(settings: new Dictionary<string, string?>
        {
            // Nothing listens on port 9 of loopback: deliveries are attempted, refused by the kernel, and logged.
            ["Webhooks__AllowPrivateTargets"] = "true",
            ["Webhooks__PollInterval"] = "00:00:00.100",
        });

        var added = await CliProcess.RunAsync(["webhooks", "add", "http://127.0.0.1:9/hook", "--event", "session.ended", "--json"], server.Environment);
        added.ExitCode.ShouldBe(0, added.ToString());
        using var json = JsonDocument.Parse(added.Stdout);
        var id = json.RootElement.GetProperty("id").GetString()!;
        json.RootElement.GetProperty("secret").GetString().ShouldNotBeNull().ShouldStartWith("whsec_");
        var plain = await CliProcess.RunAsync(["webhooks", "add", "http://127.0.0.1:9/other"], server.Environment);
        plain.ExitCode.ShouldBe(0, plain.ToString());
        plain.Stdout.ShouldMatch(@"^wh_[0-9a-f]{24} whsec_\S+\s*$");

        var started = await CliProcess.RunAsync(["bot", "start", "cli-bot", "--type", "bridge"], server.Environment);
        started.ExitCode.ShouldBe(0, started.ToString());
        (await CliProcess.RunAsync(["bot", "end", "cli-bot"], server.Environment)).ExitCode.ShouldBe(0);

        var listed = await CliProcess.RunAsync(["webhooks", "ls"], server.Environment);
        listed.ExitCode.ShouldBe(0, listed.ToString());
        listed.Stdout.ShouldContain(id);
        listed.Stdout.ShouldContain("http://127.0.0.1:9/hook");
        listed.Stdout.ShouldNotContain("whsec_");

        CliResult deliveries = null!;
        await Holdfast.TestHelpers.Poll.UntilAsync(
            async () =>
            {
                deliveries = await CliProcess.RunAsync(["webhooks", "deliveries", id, "--json"], server.Environment);
                return deliveries.ExitCode == 0 && JsonDocument.Parse(deliveries.Stdout).RootElement.GetProperty("items").EnumerateArray()
                    .Any(d => d.GetProperty("attempts").GetInt32() >= 1);
            },
            "an attempt in the delivery log",
            TimeSpan.FromSeconds(60));
        var delivery = JsonDocument.Parse(deliveries.Stdout).RootElement.GetProperty("items").EnumerateArray().Single();
        delivery.GetProperty("event_type").GetString().ShouldBe("session.ended");
        delivery.GetProperty("session_id").GetString().ShouldBe("cli-bot");
        delivery.GetProperty("id").GetString().ShouldNotBeNull().ShouldStartWith("msg_");
        delivery.GetProperty("last_error").GetString().ShouldNotBeNullOrEmpty();
        var table = await CliProcess.RunAsync(["webhooks", "deliveries", id], server.Environment);
        table.Stdout.ShouldContain("session.ended");

        // The same delivery, seen from the bot: `holdfast bot deliveries` (the client's GetBotWebhookDeliveriesAsync).
        var fromBot = await CliProcess.RunAsync(["bot", "deliveries", "cli-bot", "--json"], server.Environment);
        fromBot.ExitCode.ShouldBe(0, fromBot.ToString());
        JsonDocument.Parse(fromBot.Stdout).RootElement.GetProperty("items").EnumerateArray().Select(d => d.GetProperty("id").GetString())
            .ShouldContain(delivery.GetProperty("id").GetString());
        var botTable = await CliProcess.RunAsync(["bot", "deliveries", "cli-bot"], server.Environment);
        botTable.ExitCode.ShouldBe(0, botTable.ToString());
        botTable.Stdout.ShouldContain(delivery.GetProperty("id").GetString()!);
        var unknown = await CliProcess.RunAsync(["bot", "deliveries", "no-such-bot"], server.Environment);
        unknown.ExitCode.ShouldBe(3, unknown.ToString());

        var removed = await CliProcess.RunAsync(["webhooks", "rm", id], server.Environment);
        removed.ExitCode.ShouldBe(0, removed.ToString());
        removed.Stdout.ShouldContain($"{id} deleted");
        var again = await CliProcess.RunAsync(["webhooks", "rm", id], server.Environment);
        again.ExitCode.ShouldBe(3, again.ToString());
        var refused = await CliProcess.RunAsync(["webhooks", "add", "http://10.0.0.1/hook", "--event", "nope"], server.Environment);
        refused.ExitCode.ShouldBe(2, refused.ToString());
    }
}
