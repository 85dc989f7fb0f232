// Talks to the Holdfast server the page came from. Every request is same-origin and carries the dashboard cookie
// (HttpOnly: this code never sees it); requests that change something also send the X-Holdfast-Dashboard header,
// which the server requires of cookie-authenticated writes.

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
  }
}

const listeners = new Set();

/** Calls fn() when a request finds the browser signed out (401). */
export function onSignedOut(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function notifySignedOut() {
  for (const fn of listeners) fn();
}

export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-Holdfast-Dashboard'] = '1';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'Server unreachable', 'The Holdfast server does not answer. Is it running?');
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) {
    if (response.status === 401 && !path.endsWith('/sign-in')) notifySignedOut();
    throw new ApiError(response.status, data?.title, data?.detail);
  }
  return data;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body ?? {});

export const enc = encodeURIComponent;

/**
 * A Server-Sent Events subscription that survives reconnects (EventSource retries by itself) and tells the caller
 * whether it is live. When the browser is signed out the server answers 401 and EventSource gives up: we check
 * who we are and report it.
 */
export function subscribe(url, handlers, onState) {
  let source = null;
  let closed = false;
  let retry = null;
  const open = () => {
    if (closed) return;
    source = new EventSource(url, { withCredentials: true });
    source.onopen = () => onState?.('live');
    source.onerror = async () => {
      if (closed) return;
      onState?.('reconnecting');
      if (source.readyState === EventSource.CLOSED) {
        // A non-200 answer (401 after sign-out, 404): EventSource does not retry those by itself.
        try {
          await get('/api/v1/dashboard/me');
        } catch (e) {
          if (e.status === 401) { onState?.('signed-out'); return; }
        }
        retry = setTimeout(open, 1000);
      }
    };
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (e) => fn(JSON.parse(e.data), e));
    }
  };
  open();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      source?.close();
    },
  };
}
