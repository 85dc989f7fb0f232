// README client sample: usings begin
using Holdfast.Client;
using Holdfast.Client.Models;
using Holdfast.Client.Streaming;
// README client sample: usings end

namespace ReadmeSamples;

/// <summary>
/// The README's .NET client sample, compiled here with only the using lines the README shows (plus the implicit
/// usings every console program has), in a namespace outside Holdfast's so nothing resolves by accident.
/// </summary>
internal static class ClientReadmeSample
{
    public static async Task RunAsync(string[] args)
    {
        // README client sample: begin
        var dataDirectory = args.FirstOrDefault() ?? Environment.GetEnvironmentVariable("HOLDFAST_DATA") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share", "holdfast");
        using var client = HoldfastClient.ForUnixSocket(Path.Combine(dataDirectory, "holdfast.sock"));
        // or: new HoldfastClient(new Uri("http://127.0.0.1:7400"), apiKey)
        var generation = await client.CreateGenerationAsync(new CreateGenerationRequest("scripted", [new InputMessage("user", "Hello")]));
        await foreach (var e in client.FollowAsync(generation.Id)) // reconnects by itself from the last seq
        {
            if (e is GenerationChunkEvent chunk) Console.Write(chunk.Text);
        }
        // README client sample: end
    }
}
