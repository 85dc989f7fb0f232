using Holdfast.Bots;
using Holdfast.Sessions;
using Holdfast.Storage;
using Holdfast.TestHelpers;
using Microsoft.Extensions.Options;

namespace Holdfast.Tests.Bots;

public sealed class BotAuthStateProtectorTests
{
    [Fact]
    public void Unprotect_SameSession_RoundTrips()
    {
        using var protector = new BotAuthStateProtector(Convert.FromBase64String(BotAuthStateProtector.GenerateKey()));
        var plaintext = "credentials"u8.ToArray();

        var blob = protector.Protect("bot1", plaintext);

        protector.Unprotect("bot1", blob).ShouldBe(plaintext);
        blob.AsSpan().IndexOf(plaintext).ShouldBe(-1);
    }

    [Fact]
    public void Unprotect_OtherSessionOrOtherKeyOrAltered_Throws()
    {
        using var protector = new BotAuthStateProtector(Convert.FromBase64String(BotAuthStateProtector.GenerateKey()));
        using var other = new BotAuthStateProtector(Convert.FromBase64String(BotAuthStateProtector.GenerateKey()));
        var blob = protector.Protect("bot1", "credentials"u8);
        var altered = blob.ToArray();
        altered[^1] ^= 1;

        Should.Throw<StoreUnavailableException>(() => protector.Unprotect("bot2", blob));
        Should.Throw<StoreUnavailableException>(() => other.Unprotect("bot1", blob)).Message.ShouldContain("another key");
        Should.Throw<StoreUnavailableException>(() => protector.Unprotect("bot1", altered));
    }

    [Fact(Timeout = 30_000)]
    public async Task Constructor_NoConfiguredKey_CreatesOwnerOnlyKeyFileAndReusesIt()
    {
        using var temp = new TempDirectory();
        var storage = Options.Create(new StorageOptions { DataDirectory = temp.Path });
        var bots = Options.Create(new BotOptions());

        byte[] blob;
        using (var first = new BotAuthStateProtector(bots, storage))
        {
            blob = first.Protect("bot1", "x"u8);
        }

        using var second = new BotAuthStateProtector(bots, storage);

        second.Unprotect("bot1", blob).ShouldBe("x"u8.ToArray());
        var keyFile = temp.File("bot-auth-state.key");
        (await File.ReadAllBytesAsync(keyFile)).Length.ShouldBe(32);
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(keyFile).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    [Theory]
    [InlineData("not base64!")]
    [InlineData("c2hvcnQ=")]
    public void Constructor_BadConfiguredKey_ThrowsNamingTheSetting(string key)
    {
        using var temp = new TempDirectory();

        var ex = Should.Throw<InvalidOperationException>(() => new BotAuthStateProtector(
            Options.Create(new BotOptions { AuthStateKey = key }),
            Options.Create(new StorageOptions { DataDirectory = temp.Path })));

        ex.Message.ShouldContain("Bots:AuthStateKey");
        File.Exists(temp.File("bot-auth-state.key")).ShouldBeFalse();
    }
    [Fact(Timeout = 60_000)]
    public async Task ProtectAndUnprotect_ManyThreadsAtOnce_EveryRoundTripExact()
    {
        // Arrange: one protector shared, as in the server (the webhook dispatcher decrypts secrets in parallel).
        using var protector = new BotAuthStateProtector(Convert.FromBase64String(BotAuthStateProtector.GenerateKey()));
        using var start = new Barrier(8);

        // Act
        var failures = await Task.WhenAll(Enumerable.Range(0, 8).Select(worker => Task.Run(() =>
        {
            start.SignalAndWait();
            var failed = 0;
            for (var i = 0; i < 5_000; i++)
            {
                var plaintext = System.Text.Encoding.UTF8.GetBytes($"secret {worker}/{i}");
                try
                {
                    if (!protector.Unprotect($"s{worker}", protector.Protect($"s{worker}", plaintext)).AsSpan().SequenceEqual(plaintext))
                    {
                        failed++;
                    }
                }
                catch (StoreUnavailableException)
                {
                    failed++;
                }
            }

            return failed;
        })));

        // Assert
        failures.Sum().ShouldBe(0);
    }
}
