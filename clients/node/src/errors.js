// Typed errors of the Holdfast client. Every error the server answers carries its problem details
// (RFC 9457: type, title, status, detail, errors); a request that never got an answer is a ConnectionError.

/** Base class of every error this package throws about a Holdfast request. */
export class HoldfastError extends Error {
  /**
   * @param {string} message
   * @param {{ status?: number, problem?: object, cause?: unknown }} [options]
   */
  constructor(message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    /** HTTP status, or undefined when no answer came. */
    this.status = options.status;
    /** The server's problem details object (application/problem+json), when it sent one. */
    this.problem = options.problem;
  }

  /** The problem's `title`, e.g. "Not found". */
  get title() {
    return this.problem?.title;
  }

  /** The problem's `detail`: a sentence saying what went wrong and what to do. */
  get detail() {
    return this.problem?.detail;
  }

  /** The problem's `type` URI. */
  get type() {
    return this.problem?.type;
  }

  /** Per-field messages of a validation problem (`{ field: [message] }`), when there are any. */
  get errors() {
    return this.problem?.errors;
  }

  /** The problem's machine-readable `code` (e.g. `bot_id_unavailable`), when the server sent one. */
  get code() {
    return this.problem?.code;
  }
}

/** The request never got an HTTP answer (refused, reset, timed out, DNS). */
export class ConnectionError extends HoldfastError {}

/** 400 (or 422): the request was invalid; nothing was changed. */
export class InvalidRequestError extends HoldfastError {}

/** 401 or 403: the API key is missing, wrong, revoked, or not allowed to do this. */
export class AuthenticationError extends HoldfastError {}

/** 404: no such session (another user's session is indistinguishable from none). */
export class NotFoundError extends HoldfastError {}

/** 409: the request does not fit the session's state (e.g. resuming a completed generation). */
export class ConflictError extends HoldfastError {}

/** 410: the thing asked for is gone (e.g. an expired QR code). */
export class GoneError extends HoldfastError {}

/** 429: too many requests; `retryAfter` is in seconds when the server said. */
export class RateLimitedError extends HoldfastError {
  constructor(message, options = {}) {
    super(message, options);
    this.retryAfter = options.retryAfter;
  }
}

/** 5xx: the server (or the store, or a backend behind it) failed; retrying later may work. */
export class ServerError extends HoldfastError {}

/**
 * Builds the typed error for a non-2xx response, reading its problem details when it has them.
 * @param {Response} response
 * @param {string} what e.g. "POST /api/v1/bots"
 */
export async function errorFromResponse(response, what) {
  let problem;
  let text = '';
  try {
    text = await response.text();
    if (text) {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === 'object') problem = parsed;
    }
  } catch {
    // Not JSON: keep the text for the message.
  }
  const status = response.status;
  const detail = problem?.detail ?? problem?.title ?? (text.slice(0, 300) || response.statusText || 'no detail');
  const message = `${what} failed with ${status}: ${detail}`;
  const options = { status, problem: problem ?? { status, title: response.statusText, detail } };
  if (status === 400 || status === 422) return new InvalidRequestError(message, options);
  if (status === 401 || status === 403) return new AuthenticationError(message, options);
  if (status === 404) return new NotFoundError(message, options);
  if (status === 409) return new ConflictError(message, options);
  if (status === 410) return new GoneError(message, options);
  if (status === 429) {
    const retry = Number(response.headers.get('retry-after'));
    return new RateLimitedError(message, { ...options, retryAfter: Number.isFinite(retry) ? retry : undefined });
  }
  if (status >= 500) return new ServerError(message, options);
  return new HoldfastError(message, options);
}

/** True for failures worth retrying: no answer, 408, 429, 502, 503, 504. */
export function isTransient(error) {
  if (error instanceof ConnectionError) return true;
  return error instanceof HoldfastError && [408, 429, 502, 503, 504].includes(error.status);
}
