namespace Holdfast.Cli.Tests;

/// <summary>One <c>holdfast serve</c> child process shared by a test class (the scripted backend, fast).</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public ServerProcess Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await ServerProcess.StartNewAsync(settings: new Dictionary<string, string?>(StringComparer.Ordinal) { ["Scripted__TokensPerSecond"] = "200" });
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>Runs the CLI against this server over its Unix socket.</summary>
    public Task<CliResult> RunAsync(params string[] args) => CliProcess.RunAsync(args, Server.Environment);
}
