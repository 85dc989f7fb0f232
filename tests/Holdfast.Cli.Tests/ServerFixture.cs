namespace Holdfast.Cli.Tests;

/// <summary>
/// One <c>holdfast serve</c> child process shared by a test class: the scripted backend at 200 tokens/s with no output
/// cap of its own, so a request's <c>max_tokens</c> decides how long a generation runs (40: a fifth of a second;
/// 100000: until it is paused or cancelled).
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public ServerProcess Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await ServerProcess.StartNewAsync(settings: new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Scripted__TokensPerSecond"] = "200",
            ["Scripted__MaxTokens"] = "100000",
        });
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>Runs the CLI against this server over its Unix socket.</summary>
    public Task<CliResult> RunAsync(params string[] args) => CliProcess.RunAsync(args, Server.Environment);
}
