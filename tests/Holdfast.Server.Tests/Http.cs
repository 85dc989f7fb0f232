using System.Net;
using System.Net.Http.Json;
using System.Text;
using Holdfast.Client.Models;

namespace Holdfast.Server.Tests;

/// <summary>Small HTTP helpers for the tests.</summary>
public static class Http
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static async Task<T> ReadAsync<T>(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{(int)response.StatusCode}: {body}");
        }

        return System.Text.Json.JsonSerializer.Deserialize<T>(body, HoldfastJson.Options)!;
    }

    /// <summary>Asserts a problem+json answer with <paramref name="status"/> and a non-empty detail; returns it.</summary>
    public static async Task<Problem> ShouldBeProblemAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).ShouldBe((int)status, body);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json", body);
        var problem = System.Text.Json.JsonSerializer.Deserialize<Problem>(body, HoldfastJson.Options)!;
        problem.Status.ShouldBe((int)status);
        problem.Detail.ShouldNotBeNullOrWhiteSpace(body);
        return problem;
    }

    public static async Task<Problem> ShouldBe4xxProblemAsync(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        var shown = body.Length <= 500 ? body : body[..500] + "…";
        ((int)response.StatusCode).ShouldBeInRange(400, 499, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.PathAndQuery}: {shown}");
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json", shown);
        var problem = System.Text.Json.JsonSerializer.Deserialize<Problem>(body, HoldfastJson.Options)!;
        problem.Detail.ShouldNotBeNullOrWhiteSpace(shown);
        return problem;
    }

    public static Task<HttpResponseMessage> PostJsonAsync<T>(this HttpClient client, string path, T body) =>
        client.PostAsJsonAsync(path, body, HoldfastJson.Options);
}
