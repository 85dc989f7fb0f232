using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Holdfast.TestHelpers;
using Microsoft.Playwright;

namespace Holdfast.Dashboard.Tests;

/// <summary>
/// Debian's Chromium (<c>/usr/bin/chromium</c>, installed by <c>scripts/test-deps/chromium.sh</c>) driven by
/// Playwright, headless, started once for every browser test. Playwright is pointed at it through its executable
/// path and never downloads a browser. When Chromium is missing the tests fail; they are never skipped.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    public IPlaywright Playwright { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException(
                $"Debian's Chromium is not installed at {ChromiumPath}. Install it with 'bash scripts/test-deps/chromium.sh' " +
                "(scripts/test.sh runs it); the dashboard tests drive that browser and never download one.");
        }

        Assertions.SetDefaultExpectTimeout(15_000);
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Timeout = 60_000,
            Args =
            [
                "--no-sandbox",
                "--headless",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }

        Playwright?.Dispose();
    }

    /// <summary>A new browser profile (its own cookies); windows opened in it share the sign-in.</summary>
    public Task<IBrowserContext> NewProfileAsync(ColorScheme scheme = ColorScheme.Light, int width = 1280, int height = 900) =>
        Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ColorScheme = scheme,
            ViewportSize = new ViewportSize { Width = width, Height = height },
            Locale = "en-GB",
            TimezoneId = "UTC",
        });

    /// <summary>Where screenshots are kept as test artifacts: <c>artifacts/dashboard/</c> at the repository root.</summary>
    public static string ArtifactPath(string name)
    {
        var folder = RepositoryRoot.File("artifacts", "dashboard");
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, name);
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "Chromium";
}

/// <summary>What the tests do in a page, the way a person would.</summary>
public static class Pages
{
    /// <summary>Opens the dashboard and signs in with <paramref name="key"/>: types it into the "API key" field and presses Enter.</summary>
    public static async Task SignInAsync(IPage page, TestServer server, string key)
    {
        await page.GotoAsync(server.Url("/"));
        var field = page.GetByLabel("API key");
        await field.FillAsync(key);
        await field.PressAsync("Enter");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sessions", Exact = true })).ToBeVisibleAsync();
    }

    /// <summary>Runs <paramref name="body"/>; when it fails, keeps a screenshot of every window of the profile as an artifact.</summary>
    public static async Task KeepScreenshotsOnFailureAsync(IBrowserContext profile, string name, Func<Task> body)
    {
        try
        {
            await body();
        }
        catch
        {
            var i = 0;
            foreach (var page in profile.Pages)
            {
                try
                {
                    await page.ScreenshotAsync(new PageScreenshotOptions { Path = BrowserFixture.ArtifactPath($"failed-{name}-{i++}.png"), FullPage = true });
                }
                catch (PlaywrightException)
                {
                    // The page is gone; the failure itself is what matters.
                }
            }

            throw;
        }
    }

    /// <summary>Runs axe-core (WCAG 2 A/AA rules) on the page; returns the serious and critical violations, described.</summary>
    public static async Task<IReadOnlyList<string>> SeriousAccessibilityProblemsAsync(IPage page)
    {
        var result = await page.RunAxe(new AxeRunOptions
        {
            RunOnly = new RunOnlyOptions { Type = "tag", Values = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
        });
        return result.Violations
            .Where(v => v.Impact is "serious" or "critical")
            .Select(v => $"{v.Id} ({v.Impact}): {v.Help} — {string.Join("; ", v.Nodes.Take(3).Select(n => string.Join(" ", n.Target) + " " + n.Html))}")
            .ToList();
    }
}
