using System.Net;
using Holdfast.Sessions;
using Holdfast.Webhooks;

namespace Holdfast.Tests.Webhooks;

/// <summary>The webhook rules as pure functions: signature, event mapping, retry schedule, private addresses.</summary>
public sealed class WebhookRulesTests
{
    [Fact]
    public void Sign_StandardWebhooksTestVector_SameSignature()
    {
        // The example of the Standard Webhooks specification.
        var signature = WebhookSigner.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, "{\"test\": 2432232314}");

        signature.ShouldBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    [Theory]
    [InlineData("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true)]
    [InlineData("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false)]
    [InlineData("whsec_", false)]
    [InlineData("whsec_c2hvcnQ=", false)]
    [InlineData("whsec_not base64!", false)]
    public void IsValidSecret_Table(string secret, bool valid) => WebhookSigner.IsValidSecret(secret).ShouldBe(valid);

    [Fact]
    public void NewSecret_Valid_AndDifferentEachTime()
    {
        var a = WebhookSigner.NewSecret();
        WebhookSigner.IsValidSecret(a).ShouldBeTrue();
        a.ShouldNotBe(WebhookSigner.NewSecret());
    }

    [Theory]
    [InlineData("bot", "bot.qr", "active", "active", "qrcode.updated")]
    [InlineData("bot", "bot.connection", "active", "active", "connection.updated")]
    [InlineData("bot", "bot.message", "active", "active", "message.received")]
    [InlineData("bot", "bot.ended", "active", "inactive", "session.ended")]
    [InlineData("bot", "bot.created", null, "active", null)]
    [InlineData("bot", "bot.auth_state", "active", "active", null)]
    [InlineData("generation", "create", null, "queued", null)]
    [InlineData("generation", "claim", "queued", "running", "generation.started")]
    [InlineData("generation", "pause", "running", "running (desired paused)", null)]
    [InlineData("generation", "stop", "running (desired paused)", "paused", "generation.paused")]
    [InlineData("generation", "pause", "queued", "paused", "generation.paused")]
    [InlineData("generation", "pause", "paused", "paused", null)]
    [InlineData("generation", "resume", "paused", "queued", "generation.resumed")]
    [InlineData("generation", "resume", "failed", "queued", "generation.resumed")]
    [InlineData("generation", "complete", "running", "completed", "generation.completed")]
    [InlineData("generation", "cancel", "queued", "cancelled", "generation.cancelled")]
    [InlineData("generation", "stop", "running (desired cancelled)", "cancelled", "generation.cancelled")]
    [InlineData("generation", "fail", "running", "failed", "generation.failed")]
    [InlineData("generation", "interrupt", "running", "queued", null)]
    [InlineData("generation", "compact_log", "completed", "completed", null)]
    public void ForAudit_Table(string kind, string action, string? from, string? to, string? expected)
    {
        WebhookEvents.ForAudit(kind == "bot" ? SessionKind.Bot : SessionKind.Generation, action, from, to).ShouldBe(expected);
    }

    [Fact]
    public void RetryDelay_DoublesFromBaseUpToMax_JitteredHalfToAll_NullWhenUsedUp()
    {
        var baseDelay = TimeSpan.FromSeconds(2);
        var max = TimeSpan.FromSeconds(30);

        WebhookRules.RetryDelay(1, 5, baseDelay, max, 0.999_999)!.Value.ShouldBe(TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(1));
        WebhookRules.RetryDelay(1, 5, baseDelay, max, 0).ShouldBe(TimeSpan.FromSeconds(1));
        WebhookRules.RetryDelay(2, 5, baseDelay, max, 0).ShouldBe(TimeSpan.FromSeconds(2));
        WebhookRules.RetryDelay(3, 5, baseDelay, max, 0).ShouldBe(TimeSpan.FromSeconds(4));
        WebhookRules.RetryDelay(4, 50, baseDelay, max, 0.999_999)!.Value.ShouldBe(TimeSpan.FromSeconds(16), TimeSpan.FromMilliseconds(1));
        WebhookRules.RetryDelay(10, 50, baseDelay, max, 0.999_999)!.Value.ShouldBe(TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(1));
        WebhookRules.RetryDelay(45, 50, baseDelay, max, 0.5).ShouldBe(TimeSpan.FromSeconds(22.5));
        WebhookRules.RetryDelay(5, 5, baseDelay, max, 0.5).ShouldBeNull();
    }

    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.8.9.10", true)]
    [InlineData("::1", true)]
    [InlineData("0.0.0.0", true)]
    [InlineData("::", true)]
    [InlineData("10.1.2.3", true)]
    [InlineData("172.16.0.1", true)]
    [InlineData("172.31.255.255", true)]
    [InlineData("172.32.0.1", false)]
    [InlineData("192.168.1.1", true)]
    [InlineData("169.254.169.254", true)]
    [InlineData("100.64.0.1", true)]
    [InlineData("100.128.0.1", false)]
    [InlineData("224.0.0.1", true)]
    [InlineData("255.255.255.255", true)]
    [InlineData("192.0.2.1", true)]
    [InlineData("198.18.0.1", true)]
    [InlineData("fd00::1", true)]
    [InlineData("fe80::1", true)]
    [InlineData("ff02::1", true)]
    [InlineData("::ffff:127.0.0.1", true)]
    [InlineData("::ffff:10.0.0.1", true)]
    [InlineData("2001:db8::1", true)]
    [InlineData("93.184.215.14", false)]
    [InlineData("8.8.8.8", false)]
    [InlineData("2606:4700:4700::1111", false)]
    [InlineData("::ffff:8.8.8.8", false)]
    [InlineData("64:ff9b::a9fe:a9fe", true)]          // NAT64 of 169.254.169.254
    [InlineData("64:ff9b::7f00:1", true)]             // NAT64 of 127.0.0.1
    [InlineData("64:ff9b::808:808", false)]           // NAT64 of 8.8.8.8
    [InlineData("64:ff9b:1::808:808", true)]          // local-use NAT64 prefix
    [InlineData("2002:a00:1::1", true)]               // 6to4 of 10.0.0.1
    [InlineData("2002:7f00:1::", true)]               // 6to4 of 127.0.0.1
    [InlineData("2002:808:808::1", false)]            // 6to4 of 8.8.8.8
    [InlineData("::a9fe:a9fe", true)]                 // IPv4-compatible 169.254.169.254
    [InlineData("100::1", true)]                      // discard prefix
    public void IsPrivate_Table(string address, bool isPrivate) => WebhookTargets.IsPrivate(IPAddress.Parse(address)).ShouldBe(isPrivate);

    [Theory]
    [InlineData("http://localhost:8080/hook", true)]
    [InlineData("http://api.localhost/hook", true)]
    [InlineData("http://[::1]/hook", true)]
    [InlineData("http://10.0.0.1/hook", true)]
    [InlineData("https://hooks.example.com/x", false)]
    [InlineData("http://8.8.8.8/x", false)]
    public void IsPrivateWithoutLookup_Table(string url, bool refused) =>
        (WebhookTargets.IsPrivateWithoutLookup(new Uri(url)) is not null).ShouldBe(refused);

    [Theory]
    [InlineData("ftp://example.com/x")]
    [InlineData("/relative")]
    [InlineData("http://user:pw@example.com/x")]
    [InlineData("")]
    public void ParseUrl_NotAnHttpUrlWithoutUserInfo_Refused(string url) =>
        Should.Throw<InvalidSessionInputException>(() => WebhookTargets.ParseUrl(url)).Field.ShouldBe("url");

    [Fact]
    public async Task ResolveAllowedAsync_LiteralPrivateAddress_RefusedWithoutConnecting()
    {
        // IP literals are checked as they are: no lookup, no traffic.
        var refused = await Should.ThrowAsync<WebhookTargetRefusedException>(() => WebhookTargets.ResolveAllowedAsync("10.9.8.7", allowPrivate: false));
        refused.Message.ShouldContain("Webhooks:AllowPrivateTargets");
        (await WebhookTargets.ResolveAllowedAsync("10.9.8.7", allowPrivate: true)).ShouldBe([IPAddress.Parse("10.9.8.7")]);
        await Should.ThrowAsync<WebhookTargetRefusedException>(() => WebhookTargets.ResolveAllowedAsync("[::1]", allowPrivate: false));
    }

    [Fact]
    public void OptionsValidator_OutOfRange_NamesTheSetting()
    {
        var result = new WebhookOptionsValidator().Validate(null, new WebhookOptions { MaxAttempts = 0, RetryBaseDelay = TimeSpan.Zero, Timeout = TimeSpan.FromHours(1), BatchSize = 0 });

        result.Failed.ShouldBeTrue();
        result.FailureMessage.ShouldContain("Webhooks:MaxAttempts");
        result.FailureMessage.ShouldContain("Webhooks:RetryBaseDelay");
        result.FailureMessage.ShouldContain("Webhooks:Timeout");
        result.FailureMessage.ShouldContain("Webhooks:BatchSize");
        new WebhookOptionsValidator().Validate(null, new WebhookOptions()).Succeeded.ShouldBeTrue();
    }
}
