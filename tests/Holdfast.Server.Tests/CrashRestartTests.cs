using Holdfast.Client.Models;
using Holdfast.TestHelpers;

namespace Holdfast.Server.Tests;

using Generation = Holdfast.Client.Models.Generation;

/// <summary>The server process is SIGKILLed mid-stream and started again; SSE readers end with the full text.</summary>
public sealed class CrashRestartTests
{
    [Fact(Timeout = 240_000)]
    public async Task Stream_ThreeReaders_ServerSigkilledAndRestarted_EachGetsFullTextGaplessAndOnce()
    {
        using var data = new TempDirectory("hf");
        var port = ServeProcess.FreePort();
        var environment = new Dictionary<string, string>
        {
            ["Scripted__TokensPerSecond"] = "30",
            ["Scripted__MaxTokens"] = "150",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        var serve = await ServeProcess.StartAsync(data.Path, port, environment);
        try
        {
            string key;
            using (var socket = UnixSocketHttp.Create(Path.Combine(data.Path, "holdfast.sock")))
            {
                key = (await (await socket.PostJsonAsync("/api/v1/keys", new CreateApiKeyRequest("alice"))).ReadAsync<CreatedApiKey>()).Key;
            }

            HttpClient Client()
            {
                var client = new HttpClient { BaseAddress = serve.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
                client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
                return client;
            }

            var request = new CreateGenerationRequest("scripted", [new InputMessage("user", "a story that survives a crash")], Parameters: new GenerationParameters(Seed: 11));
            Generation generation;
            using (var client = Client())
            {
                generation = await (await client.PostJsonAsync("/api/v1/generations", request)).ReadAsync<Generation>();
                await Poll.UntilAsync(
                    async () => (await (await client.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>()).LastSeq >= 10,
                    "some output before the readers attach");
            }

            var offsets = new long[] { 0, 4, 9 };
            var followers = offsets.Select(_ => new SseFollower(Client, $"/api/v1/generations/{generation.Id}/stream")).ToArray();
            var runs = followers.Select((f, i) => f.RunAsync(offsets[i])).ToArray();
            await Poll.UntilAsync(() => Task.FromResult(followers.All(f => f.Chunks.Count >= 5)), "every reader got chunks before the kill");

            await serve.KillAsync();
            serve.Dispose();
            serve = await ServeProcess.StartAsync(data.Path, port, environment);
            await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(120));

            using var after = Client();
            var final = await (await after.GetAsync($"/api/v1/generations/{generation.Id}")).ReadAsync<Generation>();
            final.Status.ShouldBe(GenerationStatus.Completed);
            var log = await (await after.GetAsync($"/api/v1/generations/{generation.Id}/log?limit=5000")).ReadAsync<LogPage>();
            for (var i = 0; i < followers.Length; i++)
            {
                followers[i].Done!.Status.ShouldBe(GenerationStatus.Completed);
                followers[i].Connections.ShouldBeGreaterThan(1, "the reader reconnected after the kill");
                followers[i].ShouldBeGaplessAndDuplicateFree(offsets[i]);
                followers[i].Text.ShouldBe(string.Concat(log.Items.Where(e => e.Type == "chunk" && e.Seq > offsets[i]).Select(e => e.Text)));
            }

            followers[0].Text.ShouldBe(final.Output);

            // The crash changed nothing in the text: an uninterrupted run of the same request gives the same output.
            var reference = await (await after.PostJsonAsync("/api/v1/generations", request)).ReadAsync<Generation>();
            var uninterrupted = await Poll.UntilAsync(
                async () => await (await after.GetAsync($"/api/v1/generations/{reference.Id}")).ReadAsync<Generation>(),
                g => g.Status == GenerationStatus.Completed,
                "the reference run completes",
                TimeSpan.FromSeconds(60));
            final.Output.ShouldBe(uninterrupted.Output);
        }
        finally
        {
            serve.Dispose();
        }
    }
}
