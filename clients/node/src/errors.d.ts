/** Problem details (RFC 9457) as the Holdfast server sends them. */
export interface ProblemDetails {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  /** Per-field messages of a validation problem. */
  errors?: Record<string, string[]>;
  /** A machine-readable code, when the server sends one. */
  code?: string;
  trace_id?: string;
  [extension: string]: unknown;
}

/** Base class of every error this package throws about a Holdfast request. */
export class HoldfastError extends Error {
  constructor(message: string, options?: { status?: number; problem?: ProblemDetails; cause?: unknown });
  /** HTTP status, or undefined when no answer came. */
  readonly status: number | undefined;
  /** The server's problem details. */
  readonly problem: ProblemDetails | undefined;
  readonly title: string | undefined;
  readonly detail: string | undefined;
  readonly type: string | undefined;
  readonly errors: Record<string, string[]> | undefined;
  readonly code: string | undefined;
}
/** The request never got an HTTP answer (refused, reset, timed out). */
export class ConnectionError extends HoldfastError {}
/** 400 or 422: invalid request; nothing was changed. */
export class InvalidRequestError extends HoldfastError {}
/** 401 or 403: missing, wrong or revoked API key. */
export class AuthenticationError extends HoldfastError {}
/** 404: no such session (another user's session looks the same). */
export class NotFoundError extends HoldfastError {}
/** 409: the request does not fit the session's state. */
export class ConflictError extends HoldfastError {}
/** 410: gone (e.g. an expired QR code). */
export class GoneError extends HoldfastError {}
/** 429: rate limited; `retryAfter` in seconds when the server said. */
export class RateLimitedError extends HoldfastError {
  readonly retryAfter: number | undefined;
}
/** 5xx: the server failed; retrying later may work. */
export class ServerError extends HoldfastError {}

export function errorFromResponse(response: Response, what: string): Promise<HoldfastError>;
export function isTransient(error: unknown): boolean;
