// holdfast: the Node client of Holdfast. One class, HoldfastClient, speaks the HTTP API with Node's own fetch;
// createBotManager() returns one (it is the design record's `botManager`), and its `generations` property holds
// the generation calls.
import {
  ConnectionError,
  HoldfastError,
  NotFoundError,
  errorFromResponse,
  isTransient,
} from './errors.js';
import { parseEventStream } from './sse.js';
import { createHmac, timingSafeEqual } from 'node:crypto';

export * from './errors.js';

const CONNECTION_STATES = new Set([
  'starting',
  'awaiting_qr',
  'connected',
  'reconnecting',
  'disconnected',
  'logged_out',
  'failed',
]);

/**
 * A bot manager for the Holdfast server at `baseUrl` (e.g. `http://127.0.0.1:7400`), authenticated with `apiKey`.
 * @param {import('./index.js').ClientOptions} options
 */
export function createBotManager(options) {
  return new HoldfastClient(options);
}

/** Same as createBotManager: a client for bots and generations. */
export function createClient(options) {
  return new HoldfastClient(options);
}

/**
 * Checks a webhook from Holdfast (Standard Webhooks): `headers` holds `webhook-id`, `webhook-timestamp` and
 * `webhook-signature` (a plain object or a `Headers`), `rawBody` the body exactly as received (string or Buffer).
 * True when one `v1,` signature is the HMAC-SHA256 of `id.timestamp.body` with the `whsec_` secret and the timestamp
 * is within `toleranceSeconds` (300) of `now`.
 */
export function verifyWebhook(secret, headers, rawBody, { toleranceSeconds = 300, now = new Date() } = {}) {
  const get = (name) => (typeof headers?.get === 'function' ? headers.get(name) : headers?.[name]) ?? '';
  const id = get('webhook-id');
  const timestamp = get('webhook-timestamp');
  const signatures = get('webhook-signature');
  if (!String(secret ?? '').startsWith('whsec_') || !id || !/^\d+$/.test(timestamp) || !signatures) return false;
  if (Math.abs(now.getTime() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const key = Buffer.from(String(secret).slice('whsec_'.length), 'base64');
  const body = Buffer.isBuffer(rawBody) ? rawBody.toString('utf8') : String(rawBody);
  const expected = Buffer.from(`v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`);
  return String(signatures)
    .split(' ')
    .some((candidate) => candidate.length === expected.length && timingSafeEqual(Buffer.from(candidate), expected));
}

export class HoldfastClient {
  #baseUrl;
  #apiKey;
  #fetch;
  #timeoutMs;

  constructor({ baseUrl, apiKey, fetch: fetchImpl, timeoutMs = 30_000 } = {}) {
    if (!baseUrl) throw new TypeError("createBotManager needs { baseUrl }, e.g. 'http://127.0.0.1:7400'.");
    this.#baseUrl = new URL(String(baseUrl).endsWith('/') ? String(baseUrl) : `${baseUrl}/`);
    this.#apiKey = apiKey;
    this.#fetch = fetchImpl ?? globalThis.fetch;
    if (typeof this.#fetch !== 'function') throw new TypeError('No fetch: Node 20 or later is needed.');
    this.#timeoutMs = timeoutMs;
    /** Generation sessions: start, get, list, follow, pause, resume, cancel. */
    this.generations = new Generations(this);
  }

  /** The server's base URL. */
  get baseUrl() {
    return this.#baseUrl.href;
  }

  // ---------------------------------------------------------------- bots

  /**
   * Starts bot session `session_id` as the design record describes: when it exists it is looked up and returned
   * (reactivated first when it was ended: its login state and last message are kept); otherwise it is created.
   * `type` is the bot type, `bridge` by default (the runtime is this Node process); `web` is Holdfast's built-in one.
   * Resolves with the session once stored; `created` tells whether it is new.
   */
  async startSession({ session_id, sessionId, type, bot_type } = {}) {
    const id = session_id ?? sessionId;
    requireId(id, 'session_id');
    const { body, status } = await this.request('POST', 'api/v1/bots', {
      json: { session_id: id, bot_type: type ?? bot_type ?? 'bridge' },
      withStatus: true,
    });
    return Object.assign(bot(body), { created: status === 201 });
  }

  /** The session, or `null` when there is none (or it belongs to another user). */
  async getSession(sessionId) {
    requireId(sessionId);
    try {
      return bot(await this.request('GET', `api/v1/bots/${enc(sessionId)}`));
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }

  /** Every session of the caller (admins: all), ordered by id; `status` filters (`active` or `inactive`). */
  async listSessions({ status, pageSize = 200 } = {}) {
    const sessions = [];
    let cursor;
    do {
      const page = await this.request('GET', 'api/v1/bots', { query: { status, limit: pageSize, cursor } });
      sessions.push(...page.items.map(bot));
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    return sessions;
  }

  /** Stores a new QR payload (what the phone scans); `null` clears it. Resolves with the session. */
  setQr(sessionId, qrData) {
    requireId(sessionId);
    return this.request('POST', `api/v1/bots/${enc(sessionId)}/qr`, { json: { qr_data: qrData ?? null } }).then(bot);
  }

  /**
   * The session's current QR code: `{ seq, expiresAt, format, data }` (`data` is the PNG as a Buffer, or the SVG or
   * terminal text as a string). With `afterSeq`, waits up to `wait` seconds (server default 25) for a QR newer than
   * that number and resolves `null` when none came. Throws GoneError when the QR expired (a QR stored before a
   * server restart counts as expired), NotFoundError when there is none.
   */
  async getQr(sessionId, { format = 'text', afterSeq, wait } = {}) {
    requireId(sessionId);
    const response = await this.send('GET', `api/v1/bots/${enc(sessionId)}/qr`, {
      query: { format, after_seq: afterSeq, wait },
      timeoutMs: 30_000 + (Number(wait ?? (afterSeq === undefined ? 0 : 25)) || 0) * 1000,
    });
    if (response.status === 204) return null;
    if (!response.ok) throw await errorFromResponse(response, `GET QR of '${sessionId}'`);
    const data = format === 'png' ? Buffer.from(await response.arrayBuffer()) : await response.text();
    return { seq: Number(response.headers.get('x-qr-seq')), expiresAt: response.headers.get('x-qr-expires-at'), format, data };
  }

  /**
   * Records a received message as the session's last message. `at` (a Date or an ISO-8601 string) is when the
   * runtime received it; an older message never overwrites a newer one. Resolves with the session.
   */
  recordMessage(sessionId, text, { at } = {}) {
    requireId(sessionId);
    if (typeof text !== 'string') throw new TypeError('recordMessage(sessionId, text): text must be a string.');
    return this.request('POST', `api/v1/bots/${enc(sessionId)}/messages`, {
      json: { text, received_at: toIso(at, 'at') },
    }).then(bot);
  }

  /**
   * Reports the runtime's connection state: `starting`, `awaiting_qr`, `connected`, `reconnecting`,
   * `disconnected`, `logged_out` or `failed`, with an optional `reason` and disconnect `code`.
   */
  setConnection(sessionId, state, { reason, code } = {}) {
    requireId(sessionId);
    if (!CONNECTION_STATES.has(state)) {
      throw new TypeError(`setConnection: state must be one of ${[...CONNECTION_STATES].join(', ')}; it was '${state}'.`);
    }
    return this.request('POST', `api/v1/bots/${enc(sessionId)}/connection`, {
      json: { state, reason: reason ?? null, code: code ?? null },
    }).then(bot);
  }

  /** Ends the session: `inactive`, QR cleared (login state kept). Resolves with the session. */
  endSession(sessionId) {
    requireId(sessionId);
    return this.request('POST', `api/v1/bots/${enc(sessionId)}/end`).then(bot);
  }

  // ---------------------------------------------------------------- webhooks

  /**
   * Subscribes the caller's sessions' events to `url` (`eventTypes`: e.g. `['message.received']`; none: every type).
   * Resolves with the subscription and its `secret` (`whsec_…`, shown this once) to check signatures with
   * `verifyWebhook`. Loopback and private targets are refused (InvalidRequestError) unless the server allows them.
   */
  createWebhook({ url, eventTypes, event_types, secret } = {}) {
    return this.request('POST', 'api/v1/webhooks', { json: { url, event_types: eventTypes ?? event_types, secret } });
  }

  /** The caller's webhook subscriptions (admins: all), never with their secrets. */
  async listWebhooks() {
    return (await this.request('GET', 'api/v1/webhooks')).items;
  }

  /** Deletes a subscription and its pending deliveries. */
  async deleteWebhook(id) {
    requireId(id, 'id');
    await this.request('DELETE', `api/v1/webhooks/${enc(id)}`, { expectEmpty: true });
  }

  /** The delivery log of a subscription, newest first: `{ items, next_cursor }` (pass it back as `before`). */
  webhookDeliveries(id, { limit, before } = {}) {
    requireId(id, 'id');
    return this.request('GET', `api/v1/webhooks/${enc(id)}/deliveries`, { query: { limit, before } });
  }

  /** The session's audit trail, newest first. */
  async sessionEvents(sessionId, { limit } = {}) {
    requireId(sessionId);
    return (await this.request('GET', `api/v1/bots/${enc(sessionId)}/events`, { query: { limit } })).items;
  }

  /** The stored login state (decrypted by the server) as a Buffer, or `null` when none is stored. */
  async loadAuthState(sessionId) {
    requireId(sessionId);
    const response = await this.send('GET', `api/v1/bots/${enc(sessionId)}/auth-state`, {});
    if (response.status === 404) {
      const error = await errorFromResponse(response, `GET auth-state of '${sessionId}'`);
      // "no stored auth state" is null; an unknown session is an error.
      if (/no stored auth state/i.test(error.detail ?? '')) return null;
      throw error;
    }
    if (!response.ok) throw await errorFromResponse(response, `GET auth-state of '${sessionId}'`);
    return Buffer.from(await response.arrayBuffer());
  }

  /** Stores the login state (bytes), encrypted at rest by the server; `null` deletes it. */
  async saveAuthState(sessionId, state) {
    requireId(sessionId);
    const body = state == null ? new Uint8Array(0) : toBytes(state);
    const response = await this.send('PUT', `api/v1/bots/${enc(sessionId)}/auth-state`, {
      body,
      headers: { 'content-type': 'application/octet-stream' },
    });
    if (!response.ok) throw await errorFromResponse(response, `PUT auth-state of '${sessionId}'`);
  }

  /**
   * Reads per-key login state: `{ id: value }` for the ids of `type` that are stored (missing ids are absent).
   * Values are whatever JSON was stored.
   */
  async getAuthKeys(sessionId, type, ids) {
    requireId(sessionId);
    if (!ids || ids.length === 0) return {};
    const result = {};
    // Keep URLs short: ask in batches.
    for (let i = 0; i < ids.length; i += 100) {
      const batch = ids.slice(i, i + 100);
      const page = await this.request('GET', `api/v1/bots/${enc(sessionId)}/auth-keys`, {
        query: { type, ids: batch.join(',') },
      });
      Object.assign(result, page[type] ?? {});
    }
    return result;
  }

  /**
   * Writes per-key login state in one transaction: `{ type: { id: value-or-null } }`; `null` deletes the key.
   */
  async setAuthKeys(sessionId, changes) {
    requireId(sessionId);
    await this.request('POST', `api/v1/bots/${enc(sessionId)}/auth-keys`, { json: changes, expectEmpty: true });
  }

  /**
   * Calls `handler(command)` for every command the server sends session `sessionId` (e.g. `{ command: 'end' }`
   * when the session is ended from the dashboard, the CLI or the API), read from `GET /api/v1/bots/{id}/commands`
   * as Server-Sent Events. Reconnects by itself (from the last command id) after a dropped connection or a server
   * restart. Returns `{ close(), closed }`: `close()` stops listening; `closed` resolves when it stopped, or rejects
   * when the server refused the stream (e.g. 404: no such session).
   */
  onCommand(sessionId, handler, { signal, reconnectDelayMs = 250, maxReconnectDelayMs = 5_000, idleTimeoutMs = 45_000 } = {}) {
    requireId(sessionId);
    if (typeof handler !== 'function') throw new TypeError('onCommand(sessionId, handler): handler must be a function.');
    const stop = new AbortController();
    if (signal) {
      if (signal.aborted) stop.abort();
      else signal.addEventListener('abort', () => stop.abort(), { once: true });
    }
    let lastId;
    const closed = (async () => {
      let delay = reconnectDelayMs;
      while (!stop.signal.aborted) {
        try {
          for await (const event of this.#openStream(`api/v1/bots/${enc(sessionId)}/commands`, {}, lastId, stop.signal, idleTimeoutMs)) {
            delay = reconnectDelayMs;
            if (event.id !== undefined) lastId = event.id;
            if (event.event !== 'command') continue;
            await handler(JSON.parse(event.data));
          }
        } catch (error) {
          if (stop.signal.aborted) break;
          if (!isTransient(error)) throw error;
        }
        if (stop.signal.aborted) break;
        await sleep(jitter(delay), stop.signal);
        delay = Math.min(delay * 2, maxReconnectDelayMs);
      }
    })();
    closed.catch(() => {});
    return {
      close() {
        stop.abort();
        return closed.catch(() => {});
      },
      closed,
    };
  }

  // ---------------------------------------------------------------- plumbing

  /**
   * Sends a request and parses the JSON answer; a non-2xx answer throws the typed error with its problem details.
   * @internal
   */
  async request(method, path, { json, query, headers, withStatus = false, expectEmpty = false, signal, timeoutMs } = {}) {
    const response = await this.send(method, path, {
      query,
      signal,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      headers: { ...(json !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: json !== undefined ? JSON.stringify(json) : undefined,
    });
    if (!response.ok) throw await errorFromResponse(response, `${method} /${path}`);
    const text = await response.text();
    const body = expectEmpty || text === '' ? undefined : JSON.parse(text);
    return withStatus ? { body, status: response.status } : body;
  }

  /** @internal */
  async send(method, path, { query, headers, body, signal, timeoutMs = this.#timeoutMs } = {}) {
    const url = this.#url(path, query);
    const timeout = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
    const signals = [signal, timeout].filter(Boolean);
    try {
      return await this.#fetch(url, {
        method,
        headers: { accept: 'application/json', ...this.#auth(), ...headers },
        body,
        signal: signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals),
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new ConnectionError(`${method} ${url.pathname} got no answer from ${this.#baseUrl.origin}: ${describe(error)}`, { cause: error });
    }
  }

  /**
   * Opens an SSE stream and yields its events; throws the typed error when the server refuses it, a
   * ConnectionError when the connection fails or stays silent past `idleTimeoutMs`.
   * @internal
   */
  async *#openStream(path, query, lastEventId, signal, idleTimeoutMs) {
    const idle = new AbortController();
    let timer;
    const touch = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(new Error(`no data for ${idleTimeoutMs} ms`)), idleTimeoutMs);
    };
    touch();
    const both = AbortSignal.any([signal, idle.signal]);
    try {
      const response = await this.send('GET', path, {
        query,
        signal: both,
        timeoutMs: 0,
        headers: { accept: 'text/event-stream', ...(lastEventId !== undefined ? { 'last-event-id': String(lastEventId) } : {}) },
      }).catch((error) => {
        if (signal.aborted) throw error;
        throw error instanceof HoldfastError ? error : new ConnectionError(`GET /${path}: ${describe(error)}`, { cause: error });
      });
      if (!response.ok) throw await errorFromResponse(response, `GET /${path}`);
      try {
        yield* parseEventStream(response.body, touch);
      } catch (error) {
        if (signal.aborted) throw error;
        throw new ConnectionError(`the stream of /${path} broke: ${describe(idle.signal.aborted ? idle.signal.reason : error)}`, { cause: error });
      }
      // The server closed the stream cleanly (e.g. it is shutting down).
      throw new ConnectionError(`the server closed the stream of /${path}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** @internal Follows an SSE stream with reconnection; used by generations.follow. */
  openStream(path, query, lastEventId, signal, idleTimeoutMs) {
    return this.#openStream(path, query, lastEventId, signal, idleTimeoutMs);
  }

  #url(path, query) {
    const url = new URL(path, this.#baseUrl);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    return url;
  }

  #auth() {
    return this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {};
  }
}

/** Generation sessions (durable LLM generations). */
class Generations {
  #client;

  constructor(client) {
    this.#client = client;
  }

  /**
   * Starts a generation: `{ model, input, parameters?, backend?, metadata?, previous_session_id? }` where `input` is
   * a string or `[{ role, content }]`. With `idempotencyKey`, a retried start returns the same generation. Resolves
   * once it is stored (it runs in the background).
   */
  async start({ idempotencyKey, ...request } = {}) {
    const { body, status } = await this.#client.request('POST', 'api/v1/generations', {
      json: request,
      headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
      withStatus: true,
    });
    return Object.assign(body, { created: status === 201 });
  }

  /** One generation with its output so far; throws NotFoundError when there is none. */
  get(id) {
    requireId(id);
    return this.#client.request('GET', `api/v1/generations/${enc(id)}`);
  }

  /** One page of generations, newest first: `{ items, next_cursor }`. */
  list({ status, limit, cursor } = {}) {
    return this.#client.request('GET', 'api/v1/generations', { query: { status, limit, cursor } });
  }

  /** Pauses (durable when it resolves); `wait` (seconds) waits until the runner has stopped. */
  pause(id, options) {
    return this.#control(id, 'pause', options);
  }

  /** Resumes a paused or failed generation: it continues its output exactly where it stopped. */
  resume(id, options) {
    return this.#control(id, 'resume', options);
  }

  /** Cancels for good, keeping the partial output. */
  cancel(id, options) {
    return this.#control(id, 'cancel', options);
  }

  /**
   * Follows the generation's output: an async iterator of `{ type: 'chunk', seq, text }`,
   * `{ type: 'status', seq, status, reason?, error? }` and finally `{ type: 'done', status }`, after seq `after`.
   * When the connection drops or the server restarts (even after a crash), it reconnects by itself from the last
   * seq it yielded, so there is no gap and no duplicate. It ends after `done`; it throws the typed error when the
   * server refuses the stream, and a ConnectionError when no connection succeeded for `giveUpAfterMs`.
   */
  async *follow(id, { after = 0, signal, giveUpAfterMs = 60_000, reconnectDelayMs = 100, maxReconnectDelayMs = 2_000, idleTimeoutMs = 45_000 } = {}) {
    requireId(id);
    let lastSeq = after;
    let delay = reconnectDelayMs;
    let lastProgress = Date.now();
    const stop = signal ?? new AbortController().signal;
    while (true) {
      if (stop.aborted) throw stop.reason ?? new Error('aborted');
      try {
        for await (const event of this.#client.openStream(`api/v1/generations/${enc(id)}/stream`, { after: lastSeq }, lastSeq > 0 ? lastSeq : undefined, stop, idleTimeoutMs)) {
          lastProgress = Date.now();
          delay = reconnectDelayMs;
          const data = JSON.parse(event.data);
          if (event.event === 'done') {
            yield { type: 'done', status: data.status };
            return;
          }
          if (event.event !== 'chunk' && event.event !== 'status') continue;
          if (data.seq <= lastSeq) continue;
          lastSeq = data.seq;
          yield { type: event.event, ...data };
        }
      } catch (error) {
        if (stop.aborted) throw error;
        if (!isTransient(error)) throw error;
        if (Date.now() - lastProgress > giveUpAfterMs) throw error;
      }
      await sleep(jitter(delay), stop);
      delay = Math.min(delay * 2, maxReconnectDelayMs);
    }
  }

  /** Follows to the end and resolves with `{ text, status }`. */
  async collect(id, options) {
    let text = '';
    let status;
    for await (const event of this.follow(id, options)) {
      if (event.type === 'chunk') text += event.text;
      if (event.type === 'done') status = event.status;
    }
    return { text, status };
  }

  #control(id, verb, { reason, wait, expectedVersion } = {}) {
    requireId(id);
    const body = {};
    if (reason !== undefined) body.reason = reason;
    if (expectedVersion !== undefined) body.expected_version = expectedVersion;
    return this.#client.request('POST', `api/v1/generations/${enc(id)}/${verb}`, {
      json: body,
      query: { wait },
      // A control with ?wait= may take that long before the server answers.
      timeoutMs: 30_000 + (Number(wait) || 0) * 1000,
    });
  }
}

/** A bot session with every column of the design record present (the server leaves nulls out). */
function bot(session) {
  return {
    session_id: session.session_id,
    created_at: session.created_at,
    last_message: session.last_message ?? null,
    status: session.status,
    qr_data: session.qr_data ?? null,
    updated_at: session.updated_at,
    qr_seq: session.qr_seq ?? 0,
    ...session,
    bot_type: session.bot_type ?? null,
    owner: session.owner ?? null,
    connection_detail: session.connection_detail ?? null,
    connection: session.connection ?? null,
  };
}

function requireId(id, name = 'sessionId') {
  if (typeof id !== 'string' || id.length === 0) throw new TypeError(`${name} must be a non-empty string.`);
}

function enc(id) {
  return encodeURIComponent(id);
}

function toIso(at, name) {
  if (at === undefined || at === null) return undefined;
  const date = at instanceof Date ? at : new Date(at);
  if (typeof at !== 'string' && !(at instanceof Date)) throw new TypeError(`${name} must be a Date or an ISO-8601 string.`);
  if (Number.isNaN(date.getTime())) throw new TypeError(`${name} is not a valid date: '${at}'.`);
  return date.toISOString();
}

function toBytes(value) {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError('Login state must be a Buffer, Uint8Array, ArrayBuffer or string.');
}

function describe(error) {
  const cause = error?.cause;
  return [error?.message, cause?.code ?? cause?.message].filter(Boolean).join(': ') || String(error);
}

function jitter(ms) {
  return ms / 2 + Math.random() * (ms / 2);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
