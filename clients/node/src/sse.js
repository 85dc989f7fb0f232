// A small Server-Sent Events parser over a fetch Response body (WHATWG event-stream rules: `event`, `data`
// (joined with newlines), `id`, `retry`, comments). Used by follow() and onCommand().

/**
 * Yields `{ event, data, id }` for every dispatched event of `body`. `onActivity` is called for every chunk of
 * bytes (heartbeat comments included), so a caller can run an idle timer.
 * @param {ReadableStream<Uint8Array>} body
 * @param {() => void} [onActivity]
 */
export async function* parseEventStream(body, onActivity = () => {}) {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data = [];
  let id;
  const reader = body.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      onActivity();
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        const width = buffer.startsWith('\r\n', newline) ? 2 : 1;
        // A lone \r at the very end may be the first half of \r\n: wait for more bytes.
        if (width === 1 && buffer[newline] === '\r' && newline === buffer.length - 1) break;
        buffer = buffer.slice(newline + width);
        if (line === '') {
          if (data.length > 0) {
            yield { event: event || 'message', data: data.join('\n'), id };
          }
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value2 = colon < 0 ? '' : line.slice(colon + 1);
        if (value2.startsWith(' ')) value2 = value2.slice(1);
        if (field === 'event') event = value2;
        else if (field === 'data') data.push(value2);
        else if (field === 'id' && !value2.includes('\0')) id = value2;
      }
    }
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => {});
  }
}
