using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace Holdfast.Client.Streaming;

/// <summary>
/// Parses a <c>text/event-stream</c> body (WHATWG HTML, "Server-sent events" interpretation rules): lines end with
/// CRLF, LF or CR; a blank line dispatches the event; <c>:</c> starts a comment (heartbeats); one space after the colon
/// is dropped; unknown fields are ignored; an event with no data is not dispatched; an id containing NUL is ignored.
/// An unfinished event at the end of the stream is dropped, as the spec requires (the connection broke mid-event).
/// </summary>
internal static class SseParser
{
    /// <summary>
    /// Reads events from <paramref name="stream"/> until it ends. The enumeration completes when the stream ends
    /// (the server closed the connection); it throws what the stream throws when the connection breaks.
    /// </summary>
    /// <param name="stream">The response body.</param>
    /// <param name="onLine">Called for every line read (including comments), e.g. to reset an idle timer.</param>
    /// <param name="cancellationToken">Stops reading.</param>
    public static async IAsyncEnumerable<SseEvent> ParseAsync(
        Stream stream,
        Action? onLine = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var reader = new StreamReader(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), detectEncodingFromByteOrderMarks: false, bufferSize: 4096, leaveOpen: true);
        var state = new State();
        var first = true;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            onLine?.Invoke();
            if (first)
            {
                // A UTF-8 BOM at the very start of the stream is not part of the first line.
                first = false;
                if (line.Length > 0 && line[0] == '\uFEFF')
                {
                    line = line[1..];
                }
            }

            if (state.Feed(line) is { } dispatched)
            {
                yield return dispatched;
            }
        }
    }

    /// <summary>Parses a complete body held in memory (used by tests and small responses).</summary>
    public static IReadOnlyList<SseEvent> Parse(string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        var events = new List<SseEvent>();
        var state = new State();
        var start = 0;
        if (body.Length > 0 && body[0] == '\uFEFF')
        {
            start = 1;
        }

        for (var i = start; i < body.Length; i++)
        {
            var c = body[i];
            if (c is not ('\r' or '\n'))
            {
                continue;
            }

            if (state.Feed(body[start..i]) is { } dispatched)
            {
                events.Add(dispatched);
            }

            if (c == '\r' && i + 1 < body.Length && body[i + 1] == '\n')
            {
                i++;
            }

            start = i + 1;
        }

        // Text after the last line break is an unterminated line: the spec drops it with the pending event.
        return events;
    }

    private sealed class State
    {
        private readonly StringBuilder _data = new();
        private string _eventType = string.Empty;
        private string? _lastId;
        private TimeSpan? _retry;
        private bool _hasData;

        public SseEvent? Feed(string line)
        {
            if (line.Length == 0)
            {
                return Dispatch();
            }

            if (line[0] == ':')
            {
                return null;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            string field;
            string value;
            if (colon < 0)
            {
                field = line;
                value = string.Empty;
            }
            else
            {
                field = line[..colon];
                value = colon + 1 < line.Length && line[colon + 1] == ' ' ? line[(colon + 2)..] : line[(colon + 1)..];
            }

            switch (field)
            {
                case "event":
                    _eventType = value;
                    break;
                case "data":
                    if (_hasData)
                    {
                        _data.Append('\n');
                    }

                    _data.Append(value);
                    _hasData = true;
                    break;
                case "id":
                    if (!value.Contains('\0', StringComparison.Ordinal))
                    {
                        _lastId = value;
                    }

                    break;
                case "retry":
                    if (value.Length > 0 && value.All(char.IsAsciiDigit)
                        && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
                    {
                        _retry = TimeSpan.FromMilliseconds(ms);
                    }

                    break;
            }

            return null;
        }

        private SseEvent? Dispatch()
        {
            if (!_hasData)
            {
                // Nothing to dispatch; a pending retry: stays for the next event that carries data.
                _eventType = string.Empty;
                return null;
            }

            var dispatched = new SseEvent(_eventType.Length == 0 ? "message" : _eventType, _data.ToString(), _lastId, _retry);
            _data.Clear();
            _hasData = false;
            _eventType = string.Empty;
            _retry = null;
            return dispatched;
        }
    }
}
