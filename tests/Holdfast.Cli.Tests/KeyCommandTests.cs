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
        await Poll.UntilAsync(() => Task.FromResult(server.Log.Contains($"API key {id} created", StringComparison.Ordinal)), "the server itself created the key (through /api/v1/keys, not the file)");

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

    [Fact(Timeout = 120_000)]
    public async Task KeysCreate_ForTheLocalUser_RefusedWithOneLine_WithAndWithoutAServer()
    {
        using var data = new TempDirectory("hf-cli-local");
        var offline = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path };

        var withoutServer = await CliProcess.RunAsync(["keys", "create", "--user", "local"], offline);
        await using var server = await ServerProcess.StartNewAsync();
        var throughServer = await CliProcess.RunAsync(["keys", "create", "--user", "local", "--admin"], server.Environment);

        foreach (var result in new[] { withoutServer, throughServer })
        {
            result.ExitCode.ShouldBe(2, result.ToString());
            OneLine(result.Stderr).ShouldStartWith("holdfast: ");
            result.Stderr.ShouldContain("'local' is reserved");
            result.Stdout.ShouldNotContain("hf_");
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task Keys_OverTcpWithUrlAndKey_AdminManagesKeys_NonAdminIsRefusedExit1()
    {
        await using var server = await ServerProcess.StartNewAsync();
        var admin = await CreateAsync(server.Environment, "root", admin: true);
        var url = server.Url.ToString();
        var tcpOnly = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = Path.Combine(server.Data.Path, "elsewhere") };

        var created = await CliProcess.RunAsync(["keys", "create", "--user", "carol", "--json", "--url", url, "--key", admin.Key], tcpOnly);
        created.ExitCode.ShouldBe(0, created.ToString());
        using var carol = JsonDocument.Parse(created.Stdout);
        carol.RootElement.GetProperty("user").GetString().ShouldBe("carol");
        var carolKey = carol.RootElement.GetProperty("key").GetString()!;
        var listed = await CliProcess.RunAsync(["keys", "ls", "--url", url, "--key", admin.Key], tcpOnly);
        var asCarol = await CliProcess.RunAsync(["keys", "ls", "--url", url, "--key", carolKey], tcpOnly);
        var revoked = await CliProcess.RunAsync(["keys", "revoke", carol.RootElement.GetProperty("id").GetString()!, "--url", url, "--key", admin.Key], tcpOnly);

        listed.ExitCode.ShouldBe(0, listed.ToString());
        listed.Stdout.ShouldContain("carol");
        listed.Stdout.ShouldContain("root");
        asCarol.ExitCode.ShouldBe(1, asCarol.ToString());
        OneLine(asCarol.Stderr).ShouldStartWith("holdfast: ");
        asCarol.Stderr.ShouldContain("admins only");
        revoked.ExitCode.ShouldBe(0, revoked.ToString());
        Directory.Exists(tcpOnly["HOLDFAST_DATA"]).ShouldBeFalse("nothing touched a local data directory");
    }

    [Fact(Timeout = 60_000)]
    public async Task KeysLs_UrlWithNothingListening_Exit5WithoutFallingBackToTheFile()
    {
        using var data = new TempDirectory("holdfast-cli-keys");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOLDFAST_DATA"] = data.Path };

        var result = await CliProcess.RunAsync(["keys", "ls", "--url", "http://127.0.0.1:9"], environment);

        result.ExitCode.ShouldBe(5, result.ToString());
        OneLine(result.Stderr).ShouldStartWith("holdfast: ");
        result.Stderr.ShouldContain("http://127.0.0.1:9");
        File.Exists(data.File("holdfast.db")).ShouldBeFalse("an explicit --url never falls back to the local database");
    }

    [Fact(Timeout = 120_000)]
    public async Task KeysRevoke_UnknownIdThroughServer_Exit3()
    {
        await using var server = await ServerProcess.StartNewAsync();

        var result = await CliProcess.RunAsync(["keys", "revoke", "000000000000"], server.Environment);

        result.ExitCode.ShouldBe(3, result.ToString());
        OneLine(result.Stderr).ShouldStartWith("holdfast: ");
        result.Stderr.ShouldContain("000000000000");
    }

    [Fact(Timeout = 120_000)]
    public async Task KeysCreate_StaleSocketFileNoServer_UsesTheDatabaseAndTheNextServerKnowsTheKey()
    {
        await using var server = new ServerProcess();
        await File.WriteAllTextAsync(server.SocketPath, "left behind by a crash");

        var created = await CreateAsync(server.Environment, "dave");

        await server.StartAsync();
        using var client = new HoldfastClient(server.Url, created.Key);
        (await client.ListGenerationsAsync()).Items.ShouldBeEmpty("the key made in the file works against the server started later");
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

    private static async Task<(string Id, string Key)> CreateAsync(IReadOnlyDictionary<string, string?> environment, string user, bool admin = false)
    {
        var args = new List<string> { "keys", "create", "--user", user, "--json" };
        if (admin)
        {
            args.Add("--admin");
        }

        var created = await CliProcess.RunAsync(args, environment);
        created.ExitCode.ShouldBe(0, created.ToString());
        using var json = JsonDocument.Parse(created.Stdout);
        return (json.RootElement.GetProperty("id").GetString()!, json.RootElement.GetProperty("key").GetString()!);
    }

    private static string OneLine(string stderr)
    {
        var lines = stderr.Trim().Split('\n');
        lines.Length.ShouldBe(1, stderr);
        return lines[0];
    }
}
