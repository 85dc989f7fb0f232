using System.Net.Http.Json;
using Holdfast.Client.Models;
using Holdfast.TestHelpers;
using Microsoft.Playwright;

namespace Holdfast.Dashboard.Tests;

/// <summary>
/// Every main view in light and dark (following the system setting) and on a narrow phone screen: a screenshot kept
/// in <c>artifacts/dashboard/</c>, and an axe-core scan with no serious or critical violation. The bot view has webhook
/// deliveries (delivered and failing ones, to a receiver on loopback).
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class DashboardLookTests(BrowserFixture browser)
{
    public static TheoryData<ColorScheme, int> Looks => new()
    {
        { ColorScheme.Light, 1280 },
        { ColorScheme.Dark, 1280 },
        { ColorScheme.Light, 390 },
        { ColorScheme.Dark, 390 },
    };

    [Theory(Timeout = 180_000)]
    [MemberData(nameof(Looks))]
    public async Task EveryView_HasNoSeriousAccessibilityViolation_AndIsKeptAsAScreenshot(ColorScheme scheme, int width)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await DashboardServer.StartAsync(WebhookReceiver.ServerSettings);
        var key = await server.CreateKeyAsync("alice");
        await WebhookReceiver.SubscribeAsync(server, key, receiver.Accepting, "qrcode.updated", "message.received");
        await WebhookReceiver.SubscribeAsync(server, key, receiver.Failing, "message.received");
        var done = await server.StartGenerationAsync(key, "Tell me about harbours", maxTokens: 12);
        var generation = await server.StartGenerationAsync(key, "Tell me about the holdfast of a kelp forest.");
        using var api = server.Tcp(key);
        (await api.PostAsJsonAsync("/api/v1/bots", new StartBotRequest("support-bot", "bridge"), HoldfastJson.Options)).EnsureSuccessStatusCode();
        (await api.PostAsJsonAsync("/api/v1/bots/support-bot/qr", new BotQrUpdate("https://example.invalid/pair/support-bot"), HoldfastJson.Options)).EnsureSuccessStatusCode();
        (await api.PostAsJsonAsync("/api/v1/bots/support-bot/messages", new BotMessage("Hello! Is anyone there?"), HoldfastJson.Options)).EnsureSuccessStatusCode();
        await Poll.UntilAsync(async () => (await server.GetGenerationAsync(key, generation.Id)).Output?.Length > 40, "some output");
        (await api.PostAsync($"/api/v1/generations/{generation.Id}/pause?wait=10", null)).EnsureSuccessStatusCode();
        await Poll.UntilAsync(async () => (await server.GetGenerationAsync(key, done.Id)).Status == GenerationStatus.Completed, "the short one completes");

        var tag = $"{(scheme == ColorScheme.Dark ? "dark" : "light")}-{width}";
        await using var profile = await browser.NewProfileAsync(scheme, width, width < 600 ? 844 : 900);
        var page = await profile.NewPageAsync();
        var problems = new List<string>();

        await page.GotoAsync(server.Url("/"));
        await Assertions.Expect(page.GetByLabel("API key")).ToBeVisibleAsync();
        await CheckAsync(page, $"signin-{tag}", problems);

        await Pages.SignInAsync(page, server, key);
        await Assertions.Expect(page.Locator("table.sessions tbody tr")).ToHaveCountAsync(3);
        await CheckAsync(page, $"list-{tag}", problems);

        await page.GetByRole(AriaRole.Link, new() { Name = generation.Id }).ClickAsync();
        await Assertions.Expect(page.Locator("#status")).ToHaveTextAsync("paused");
        await Assertions.Expect(page.Locator("table.audit tbody tr").First).ToBeVisibleAsync();
        await CheckAsync(page, $"generation-{tag}", problems);

        await page.GotoAsync(server.Url("/bots/support-bot"));
        var qr = page.GetByRole(AriaRole.Img, new() { Name = "QR code to pair bot support-bot", Exact = false });
        await Assertions.Expect(qr).ToBeVisibleAsync();
        await Poll.UntilAsync(() => qr.EvaluateAsync<bool>("img => img.complete && img.naturalWidth > 0"), "the QR image loads");
        var deliveries = page.Locator("table.deliveries tbody tr");
        await Assertions.Expect(deliveries).ToHaveCountAsync(3);
        await Assertions.Expect(deliveries.Locator("[data-label='Status']").Filter(new() { HasText = "delivered" })).ToHaveCountAsync(2);
        await CheckAsync(page, $"bot-{tag}", problems);

        problems.ShouldBeEmpty();
        if (width < 600)
        {
            // Nothing is wider than a phone's screen.
            (await page.EvaluateAsync<int>("document.documentElement.scrollWidth")).ShouldBeLessThanOrEqualTo(width);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Keyboard_SignsInAndStartsAGeneration_WithAVisibleFocus()
    {
        await using var server = await DashboardServer.StartAsync();
        var key = await server.CreateKeyAsync("alice");
        await using var profile = await browser.NewProfileAsync();
        var page = await profile.NewPageAsync();
        await page.GotoAsync(server.Url("/"));
        await Assertions.Expect(page.GetByLabel("API key")).ToBeVisibleAsync();

        // Tab from the top: skip link, brand, then the field; typing and Enter signs in.
        for (var i = 0; i < 6 && await page.EvaluateAsync<string>("document.activeElement?.id ?? ''") != "api-key"; i++)
        {
            await page.Keyboard.PressAsync("Tab");
        }

        (await page.EvaluateAsync<string>("document.activeElement.id")).ShouldBe("api-key");
        var outline = await page.EvaluateAsync<string>("getComputedStyle(document.activeElement).outlineStyle");
        outline.ShouldNotBe("none", "the focused field shows where the keyboard is");
        await page.Keyboard.TypeAsync(key);
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sessions", Exact = true })).ToBeFocusedAsync();

        // From the heading: Tab to "Start a session", open it with Enter, fill the form, start with Enter on the button.
        await page.Keyboard.PressAsync("Tab");
        await Assertions.Expect(page.GetByText("Start a session")).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Enter");
        await page.Keyboard.PressAsync("Tab");
        await Assertions.Expect(page.GetByLabel("Model")).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Tab");
        await page.Keyboard.TypeAsync("Hello from the keyboard");
        await page.Keyboard.PressAsync("Tab");
        await page.Keyboard.PressAsync("Tab");
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Start generation" })).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Enter");
        await Poll.UntilAsync(
            async () => (await page.Locator("#status").TextContentAsync()) is "queued" or "running" or "completed",
            "the new generation's status shows");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Generation", Exact = false })).ToBeFocusedAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task AccessibilityScan_FindsWhatItLooksFor()
    {
        // The scan above must be able to fail: the same scan on a page with an unlabelled field and poor contrast.
        await using var profile = await browser.NewProfileAsync();
        var page = await profile.NewPageAsync();
        await page.SetContentAsync("<!doctype html><html lang=en><title>t</title><main><input type=text><p style='color:#bbb;background:#fff'>faint</p></main></html>");

        var problems = await Pages.SeriousAccessibilityProblemsAsync(page);

        problems.ShouldContain(p => p.StartsWith("label", StringComparison.Ordinal));
        problems.ShouldContain(p => p.StartsWith("color-contrast", StringComparison.Ordinal));
    }

    private static async Task CheckAsync(IPage page, string name, List<string> problems)
    {
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = BrowserFixture.ArtifactPath(name + ".png"), FullPage = true });
        foreach (var problem in await Pages.SeriousAccessibilityProblemsAsync(page))
        {
            problems.Add($"{name}: {problem}");
        }
    }
}
