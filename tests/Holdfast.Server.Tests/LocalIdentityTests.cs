using System.Net;
using System.Security.Cryptography;
using System.Text;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Microsoft.Data.Sqlite;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>
/// Issue 10 item 2: sessions made over the Unix socket or by the CLI belong to the reserved user <c>local</c>. No API
/// key can be made for it, and a non-admin key never sees its sessions.
/// </summary>
public sealed class LocalIdentityTests
{
    [Theory(Timeout = 60_000)]
    [InlineData("local")]
    [InlineData("LOCAL")]
    public async Task CreateKey_ForTheLocalUser_Is400NamingTheReservation_NothingCreated(string user)
    {
        await using var server = await TestServer.StartAsync();
        using var socket = server.Socket();
        using var admin = server.Tcp(await server.CreateKeyAsync("root", admin: true));

        using var overSocket = await socket.PostJsonAsync("/api/v1/keys", new CreateApiKeyRequest(user));
        using var overTcp = await admin.PostJsonAsync("/api/v1/keys", new CreateApiKeyRequest(user, Admin: true));

        (await overSocket.ShouldBeProblemAsync(HttpStatusCode.BadRequest)).Detail.ShouldNotBeNull().ShouldContain("reserved");
        (await overTcp.ShouldBeProblemAsync(HttpStatusCode.BadRequest)).Detail.ShouldNotBeNull().ShouldContain("reserved");
        var keys = await (await socket.GetAsync("/api/v1/keys")).ReadAsync<ItemPage<ApiKeyInfo>>();
        keys.Items.ShouldAllBe(k => k.User == "root");
    }

    [Fact(Timeout = 60_000)]
    public async Task NonAdminKeyOfLocal_MadeBeforeTheReservation_SeesNoLocalSession()
    {
        await using var server = await TestServer.StartAsync();
        using var socket = server.Socket();
        var mine = await (await socket.PostJsonAsync("/api/v1/generations", new CreateGenerationRequest("scripted", [new InputMessage("user", "local work")]))).ReadAsync<Generation>();
        mine.Owner.ShouldBe("local");
        var legacyKey = await InsertLegacyKeyAsync(server.DatabasePath, "local");
        using var legacy = server.Tcp(legacyKey);

        using var list = await legacy.GetAsync("/api/v1/generations");
        using var get = await legacy.GetAsync($"/api/v1/generations/{mine.Id}");

        list.StatusCode.ShouldBe(HttpStatusCode.Unauthorized, await list.Content.ReadAsStringAsync());
        get.StatusCode.ShouldBe(HttpStatusCode.Unauthorized, await get.Content.ReadAsStringAsync());
    }

    /// <summary>A key for <paramref name="user"/> written straight into the database, as an older version could have.</summary>
    private static async Task<string> InsertLegacyKeyAsync(string databasePath, string user)
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var key = $"hf_{id}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))}";
        await using var connection = new SqliteConnection($"Data Source={databasePath};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO users (name, is_admin, created_at) VALUES ($user, 0, '2026-01-01T00:00:00.0000000Z') ON CONFLICT (name) DO NOTHING;
            INSERT INTO api_keys (id, user_name, secret_hash, created_at) VALUES ($id, $user, $hash, '2026-01-01T00:00:00.0000000Z');
            """;
        command.Parameters.AddWithValue("$user", user);
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$hash", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key))));
        await command.ExecuteNonQueryAsync();
        return key;
    }
}
