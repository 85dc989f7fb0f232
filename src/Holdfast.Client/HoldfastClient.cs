using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Holdfast.Client.Models;

namespace Holdfast.Client;

/// <summary>
/// Typed client of a Holdfast server's native API (<c>/api/v1</c>), over loopback TCP with an API key or over the
/// server's Unix domain socket (trusted as the local admin). Thread-safe; create one and reuse it.
/// Every method throws <see cref="HoldfastApiException"/> when the server answers with an error, and
/// <see cref="HttpRequestException"/> when the server cannot be reached.
/// </summary>
public sealed partial class HoldfastClient : IDisposable
{
    /// <summary>The default loopback address of <c>holdfast serve</c>.</summary>
    public static readonly Uri DefaultAddress = new("http://127.0.0.1:7400");

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;

    /// <summary>A client for the server at <paramref name="baseAddress"/> (e.g. <c>http://127.0.0.1:7400</c>).</summary>
    /// <param name="baseAddress">The server's base address.</param>
    /// <param name="apiKey">The API key sent as <c>Authorization: Bearer</c>; null for none.</param>
    public HoldfastClient(Uri baseAddress, string? apiKey = null)
        : this(new HttpClient(CreateHandler(), disposeHandler: true), baseAddress, apiKey, ownsHttp: true)
    {
    }

    /// <summary>
    /// A client over a caller-owned <see cref="HttpClient"/> (its handler decides the transport). The HTTP client is not
    /// disposed with this one; its <see cref="HttpClient.Timeout"/> should be infinite so streams can stay open.
    /// </summary>
    /// <param name="http">The HTTP client to send requests with.</param>
    /// <param name="baseAddress">The server's base address; defaults to the HTTP client's own.</param>
    /// <param name="apiKey">The API key sent as <c>Authorization: Bearer</c>; null for none.</param>
    public HoldfastClient(HttpClient http, Uri? baseAddress = null, string? apiKey = null)
        : this(http, baseAddress ?? http?.BaseAddress ?? throw new ArgumentException("A base address is required.", nameof(baseAddress)), apiKey, ownsHttp: false)
    {
    }

    private HoldfastClient(HttpClient http, Uri baseAddress, string? apiKey, bool ownsHttp)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(baseAddress);
        _http = http;
        _ownsHttp = ownsHttp;
        BaseAddress = baseAddress.AbsoluteUri.EndsWith('/') ? baseAddress : new Uri(baseAddress.AbsoluteUri + "/");
        ApiKey = string.IsNullOrEmpty(apiKey) ? null : apiKey;
        if (ownsHttp)
        {
            _http.Timeout = Timeout.InfiniteTimeSpan;
        }
    }

    /// <summary>
    /// A client over the server's Unix domain socket (by default <c>$HOLDFAST_DATA/holdfast.sock</c>). The socket is the
    /// local IPC channel, guarded by file permissions: requests over it act as the local admin and need no key.
    /// </summary>
    /// <param name="socketPath">Path of the socket file.</param>
    public static HoldfastClient ForUnixSocket(string socketPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        var fullPath = Path.GetFullPath(socketPath);
        var handler = CreateHandler();
        handler.ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(fullPath), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        };
        var client = new HoldfastClient(new HttpClient(handler, disposeHandler: true), new Uri("http://localhost/"), apiKey: null, ownsHttp: true)
        {
            SocketPath = fullPath,
        };
        return client;
    }

    /// <summary>The server's base address (for a Unix socket client, <c>http://localhost/</c>).</summary>
    public Uri BaseAddress { get; }

    /// <summary>The socket file, when this client talks over a Unix socket; else null.</summary>
    public string? SocketPath { get; private init; }

    /// <summary>How long an ordinary request (not a stream) may take before it is abandoned. Default 100 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(100);

    private string? ApiKey { get; }

    /// <summary>Releases the connections (when this client created its HTTP client).</summary>
    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    /// <summary>
    /// Asks <c>/healthz</c>. Completes with true once the server answered 2xx; throws
    /// <see cref="HttpRequestException"/> when it cannot be reached.
    /// </summary>
    /// <param name="cancellationToken">Abandons the request.</param>
    public async Task<bool> PingAsync(CancellationToken cancellationToken = default)
    {
        using var request = CreateRequest(HttpMethod.Get, "healthz");
        using var timeout = CreateTimeout(cancellationToken, null);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        return response.IsSuccessStatusCode;
    }

    private static SocketsHttpHandler CreateHandler() => new()
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectTimeout = TimeSpan.FromSeconds(10),
        AutomaticDecompression = DecompressionMethods.None,
    };

    private HttpRequestMessage CreateRequest(HttpMethod method, string relativePath, object? body = null)
    {
        var request = new HttpRequestMessage(method, new Uri(BaseAddress, relativePath));
        if (ApiKey is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiKey);
        }

        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body, body.GetType(), HoldfastJson.Options), Encoding.UTF8, "application/json");
        }

        return request;
    }

    private CancellationTokenSource CreateTimeout(CancellationToken cancellationToken, TimeSpan? extra)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (RequestTimeout != Timeout.InfiniteTimeSpan)
        {
            source.CancelAfter(RequestTimeout + (extra ?? TimeSpan.Zero));
        }

        return source;
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, TimeSpan? extraTimeout, CancellationToken cancellationToken)
    {
        using var timeout = CreateTimeout(cancellationToken, extraTimeout);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"The server did not answer {request.Method} {request.RequestUri?.AbsolutePath} within {(RequestTimeout + (extraTimeout ?? TimeSpan.Zero)).TotalSeconds:0} s.", e);
        }

        if (!response.IsSuccessStatusCode)
        {
            using (response)
            {
                throw await ReadProblemAsync(response, cancellationToken);
            }
        }

        return response;
    }

    private async Task<T> SendAsync<T>(HttpMethod method, string relativePath, object? body = null, IReadOnlyDictionary<string, string>? headers = null, TimeSpan? extraTimeout = null, CancellationToken cancellationToken = default)
    {
        using var request = CreateRequest(method, relativePath, body);
        if (headers is not null)
        {
            foreach (var (name, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        using var response = await SendRawAsync(request, extraTimeout, cancellationToken);
        var result = await response.Content.ReadFromJsonAsync<T>(HoldfastJson.Options, cancellationToken);
        return result ?? throw new HoldfastApiException(response.StatusCode, "Empty response", $"The server answered {request.Method} {request.RequestUri?.AbsolutePath} with an empty body.");
    }

    private async Task SendNoContentAsync(HttpMethod method, string relativePath, CancellationToken cancellationToken)
    {
        using var request = CreateRequest(method, relativePath);
        using var response = await SendRawAsync(request, null, cancellationToken);
    }

    /// <summary>Turns an error answer into a <see cref="HoldfastApiException"/> (problem+json, or plain text as a fallback).</summary>
    internal static async Task<HoldfastApiException> ReadProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = response.StatusCode;
        var fallbackTitle = response.ReasonPhrase is { Length: > 0 } phrase ? phrase : status.ToString();
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync(cancellationToken);
        }
        catch (HttpRequestException)
        {
            body = string.Empty;
        }

        if (body.Length > 0 && body.TrimStart().StartsWith('{'))
        {
            try
            {
                using var document = JsonDocument.Parse(body);
                var root = document.RootElement;
                var title = GetString(root, "title") ?? fallbackTitle;
                var detail = GetString(root, "detail");
                var type = GetString(root, "type");
                var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
                if (root.TryGetProperty("errors", out var errorsElement) && errorsElement.ValueKind == JsonValueKind.Object)
                {
                    foreach (var field in errorsElement.EnumerateObject())
                    {
                        errors[field.Name] = field.Value.ValueKind == JsonValueKind.Array
                            ? field.Value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() ?? string.Empty : e.GetRawText()).ToArray()
                            : [field.Value.ValueKind == JsonValueKind.String ? field.Value.GetString() ?? string.Empty : field.Value.GetRawText()];
                    }
                }

                if (detail is null && errors.Count > 0)
                {
                    detail = string.Join(" ", errors.SelectMany(e => e.Value));
                }

                return new HoldfastApiException(status, title, detail, type, errors);
            }
            catch (JsonException)
            {
                // Not JSON after all: fall through to the plain-text form.
            }
        }

        var text = body.Trim();
        if (text.Length > 300)
        {
            text = string.Concat(text.AsSpan(0, 300), "…");
        }

        return new HoldfastApiException(status, fallbackTitle, text.Length == 0 ? null : text);
    }

    private static string? GetString(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string Escape(string value) => Uri.EscapeDataString(value);

    private static string Query(string path, params (string Name, object? Value)[] parameters)
    {
        var builder = new StringBuilder(path);
        var separator = '?';
        foreach (var (name, value) in parameters)
        {
            if (value is null)
            {
                continue;
            }

            var text = value switch
            {
                bool b => b ? "true" : "false",
                IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
                _ => value.ToString() ?? string.Empty,
            };
            builder.Append(separator).Append(Uri.EscapeDataString(name)).Append('=').Append(Uri.EscapeDataString(text));
            separator = '&';
        }

        return builder.ToString();
    }
}
