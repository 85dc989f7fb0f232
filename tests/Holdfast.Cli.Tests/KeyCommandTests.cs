using System.Net;
using System.Text.Json;
using Holdfast.Client;
using Holdfast.TestHelpers;

namespace Holdfast.Cli.Tests;

public sealed class KeyCommandTests
{
    [Fact(Timeout = 120_000)]
    public async Task KeysCreate_WhileServerRuns_KeyWorksOverTcpAndRevokeStopsIt()
    {
        await using var server = await ServerProcess.StartNewAsync();

        var created = await CliProcess.RunAsync(["keys", "create", "--user", "alice", "--admin", "--json"], server.Environment);

        created.ExitCode.ShouldBe(0, created.ToString());
        using var json = JsonDocument.Parse(created.Stdout);
        json.RootElement.GetProperty("user").GetString().ShouldBe("alice");
        var key = json.RootElement.GetProperty("key").GetString()!;
        var id = json.RootElement.GetProperty("id").GetString()!;
        using var client = new HoldfastClient(server.Url, key);
        (await client.ListKeysAsync()).ShouldContain(k => k.Id == id && k.User == "alice" && k.Admin);

        var listed = await CliProcess.RunAsync(["keys", "ls", "--json"], server.Environment);
        listed.ExitCode.ShouldBe(0, listed.ToString());
        listed.Stdout.ShouldContain(id);
        listed.Stdout.ShouldNotContain(key);

        var revoked = await CliProcess.RunAsync(["keys", "revoke", id], server.Environment);
        revoked.ExitCode.ShouldBe(0, revoked.ToString());
        revoked.Stdout.ShouldContain($"{id} revoked");
        var refused = await Should.ThrowAsync<HoldfastApiException>(() => client.ListKeysAsync());
        refused.Status.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact(Timeout = 60_000)]
    public async Task KeysCreate_FreshDataDirectoryWithoutServer_PrintsKeyOnly()
    {
        using var data = new TempDirectory("holdfast-cli-keys");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path };

        var created = await CliProcess.RunAsync(["keys", "create", "--user", "bob"], environment);
        var listed = await CliProcess.RunAsync(["keys", "ls"], environment);

        created.ExitCode.ShouldBe(0, created.ToString());
        created.Stdout.Trim().ShouldStartWith("hf_");
        created.Stdout.Trim().Split('\n').Length.ShouldBe(1);
        listed.ExitCode.ShouldBe(0, listed.ToString());
        listed.Stdout.ShouldContain("bob");
    }

    [Fact(Timeout = 60_000)]
    public async Task KeysRevoke_UnknownId_Exit3()
    {
        using var data = new TempDirectory("holdfast-cli-keys");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path };

        var result = await CliProcess.RunAsync(["keys", "revoke", "000000000000"], environment);

        result.ExitCode.ShouldBe(3, result.ToString());
        result.Stderr.ShouldContain("000000000000");
    }

    [Fact(Timeout = 60_000)]
    public async Task KeysCreate_MissingUser_Exit2()
    {
        using var data = new TempDirectory("holdfast-cli-keys");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path };

        var result = await CliProcess.RunAsync(["keys", "create"], environment);

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Stderr.ShouldContain("--user");
    }
}
