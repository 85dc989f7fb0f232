export * from './errors.js';

export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:7400`. */
  baseUrl: string | URL;
  /** An API key (`holdfast keys create --user NAME`). */
  apiKey?: string;
  /** A fetch implementation; Node's own by default. */
  fetch?: typeof fetch;
  /** Timeout of one request in ms (default 30 000; streams have none). */
  timeoutMs?: number;
}

export type BotStatus = 'active' | 'inactive';
export type ConnectionState = 'starting' | 'awaiting_qr' | 'connected' | 'reconnecting' | 'disconnected' | 'logged_out' | 'failed';

/** A row of `bot_sessions`, as the design record describes it, plus Holdfast's additive columns. */
export interface BotSession {
  session_id: string;
  created_at: string;
  last_message: string | null;
  status: BotStatus;
  qr_data: string | null;
  updated_at: string;
  bot_type: string | null;
  owner: string | null;
  connection_detail: string | null;
  /** Number of the current QR code (grows with every new one). */
  qr_seq: number;
  /** QR codes since the session was last connected. */
  qr_attempts?: number;
  /** What the runtime last reported (null before any report). */
  connection: BotConnection | null;
  version: number;
  /** The node whose connector runs the bot under a lease (several nodes on one PostgreSQL); null when nobody holds it. */
  holder?: { node_id: string; epoch: number; lease_expires_at: string } | null;
  [field: string]: unknown;
}

export interface BotConnection {
  state: ConnectionState;
  reason?: string | null;
  code?: number | null;
  at: string;
}

export interface StartedBotSession extends BotSession {
  /** True when this call created the session; false when it was looked up (and reactivated if it was ended). */
  created: boolean;
}

export interface BotCommand {
  /** `start`: the session was started, reactivated or restored; `end`: it was ended. */
  command: 'start' | 'end' | (string & {});
  session_id: string;
  version: number;
}

export interface CommandListener {
  /** Stops listening; resolves once stopped. */
  close(): Promise<void>;
  /** Resolves when listening stopped; rejects when the server refused the stream (e.g. NotFoundError). */
  readonly closed: Promise<void>;
}

export interface AuditEntry {
  kind: string;
  session_id: string;
  seq: number;
  at: string;
  actor: string;
  action: string;
  from_state?: string | null;
  to_state?: string | null;
  detail?: string | null;
}

export type GenerationStatus = 'queued' | 'running' | 'paused' | 'completed' | 'cancelled' | 'failed';

export interface InputMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

export interface GenerationParameters {
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  seed?: number;
  stop?: string[];
}

export interface StartGenerationRequest {
  model: string;
  input: string | InputMessage[];
  backend?: string;
  parameters?: GenerationParameters;
  previous_session_id?: string;
  metadata?: Record<string, string>;
  /** Sent as the `Idempotency-Key` header: a retried start returns the same generation. */
  idempotencyKey?: string;
}

export interface Generation {
  id: string;
  owner: string;
  model: string;
  backend: string;
  status: GenerationStatus;
  desired_state?: string | null;
  pause_reason?: string | null;
  error?: string | null;
  finish_reason?: string | null;
  output?: string | null;
  last_seq: number;
  version: number;
  created_at: string;
  updated_at: string;
  completed_at?: string | null;
  [field: string]: unknown;
}

export interface StartedGeneration extends Generation {
  /** False when an earlier start with the same idempotency key is returned. */
  created: boolean;
}

export interface ControlOptions {
  reason?: string;
  /** Seconds to wait until the runner got there. */
  wait?: number;
  expectedVersion?: number;
}

export type FollowEvent =
  | { type: 'chunk'; seq: number; text: string }
  | { type: 'status'; seq: number; status: GenerationStatus; reason?: string; error?: string }
  | { type: 'done'; status: GenerationStatus };

export interface FollowOptions {
  /** Yield only events after this seq (default 0: everything). */
  after?: number;
  signal?: AbortSignal;
  /** Give up when no connection succeeded for this long (default 60 000 ms). */
  giveUpAfterMs?: number;
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** Reconnect when the stream is silent this long (heartbeats count; default 45 000 ms). */
  idleTimeoutMs?: number;
}

export interface Generations {
  /** Starts a generation; resolves once it is stored (it runs in the background). */
  start(request: StartGenerationRequest): Promise<StartedGeneration>;
  get(id: string): Promise<Generation>;
  list(options?: { status?: GenerationStatus; limit?: number; cursor?: string }): Promise<{ items: Generation[]; next_cursor?: string | null }>;
  pause(id: string, options?: ControlOptions): Promise<Generation>;
  resume(id: string, options?: ControlOptions): Promise<Generation>;
  cancel(id: string, options?: ControlOptions): Promise<Generation>;
  /** The stored output, then the live tail; reconnects from the last seq after a dropped connection; ends after `done`. */
  follow(id: string, options?: FollowOptions): AsyncGenerator<FollowEvent, void, undefined>;
  /** Follows to the end: the whole text and the final status. */
  collect(id: string, options?: FollowOptions): Promise<{ text: string; status: GenerationStatus | undefined }>;
}

export type AuthKeyChanges = Record<string, Record<string, unknown | null>>;

export class HoldfastClient {
  constructor(options: ClientOptions);
  readonly baseUrl: string;
  readonly generations: Generations;

  /** Looks the session up and returns it (reactivating an ended one), or creates it. `type` defaults to `bridge`. */
  startSession(request: { session_id: string; type?: string }): Promise<StartedBotSession>;
  /** The session, or null when there is none. */
  getSession(sessionId: string): Promise<BotSession | null>;
  listSessions(options?: { status?: BotStatus; pageSize?: number }): Promise<BotSession[]>;
  setQr(sessionId: string, qrData: string | null): Promise<BotSession>;
  /** The current QR; with `afterSeq`, waits up to `wait` s for a newer one (null when none came). GoneError when expired. */
  getQr(
    sessionId: string,
    options?: { format?: 'text' | 'svg' | 'png'; afterSeq?: number; wait?: number },
  ): Promise<{ seq: number; expiresAt: string | null; format: string; data: string | Uint8Array } | null>;
  recordMessage(sessionId: string, text: string, options?: { at?: Date | string }): Promise<BotSession>;
  setConnection(sessionId: string, state: ConnectionState, options?: { reason?: string; code?: number }): Promise<BotSession>;
  endSession(sessionId: string): Promise<BotSession>;
  sessionEvents(sessionId: string, options?: { limit?: number }): Promise<AuditEntry[]>;
  /** Subscribes the caller's sessions' events to `url`; the `secret` (whsec_…) is in this answer only. */
  createWebhook(options: { url: string; eventTypes?: WebhookEventType[]; secret?: string }): Promise<Webhook & { secret: string }>;
  listWebhooks(): Promise<Webhook[]>;
  deleteWebhook(id: string): Promise<void>;
  /** The delivery log, newest first. */
  webhookDeliveries(id: string, options?: { limit?: number; before?: string }): Promise<{ items: WebhookDelivery[]; next_cursor?: string }>;
  /** The login state (a Buffer at run time), or null when none is stored. */
  loadAuthState(sessionId: string): Promise<Uint8Array | null>;
  saveAuthState(sessionId: string, state: Uint8Array | ArrayBuffer | string | null): Promise<void>;
  getAuthKeys(sessionId: string, type: string, ids: string[]): Promise<Record<string, unknown>>;
  setAuthKeys(sessionId: string, changes: AuthKeyChanges): Promise<void>;
  onCommand(
    sessionId: string,
    handler: (command: BotCommand) => void | Promise<void>,
    options?: { signal?: AbortSignal; reconnectDelayMs?: number; maxReconnectDelayMs?: number; idleTimeoutMs?: number },
  ): CommandListener;
}

/** The design record's `botManager`: `await botManager.startSession({ session_id: 'bot1' })`. */
export function createBotManager(options: ClientOptions): HoldfastClient;
/** Same as createBotManager. */
export function createClient(options: ClientOptions): HoldfastClient;

/** A webhook event type. */
export type WebhookEventType =
  | 'qrcode.updated'
  | 'connection.updated'
  | 'message.received'
  | 'session.ended'
  | 'generation.started'
  | 'generation.paused'
  | 'generation.resumed'
  | 'generation.completed'
  | 'generation.cancelled'
  | 'generation.failed';

/** A webhook subscription (never with its secret). */
export interface Webhook {
  id: string;
  owner: string;
  url: string;
  event_types: WebhookEventType[];
  created_at: string;
}

/** One event for one subscription: `id` is the `webhook-id` header, the same on every attempt. */
export interface WebhookDelivery {
  id: string;
  subscription_id: string;
  event_type: WebhookEventType;
  session_kind: 'bot' | 'generation';
  session_id: string;
  created_at: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at?: string;
  last_attempt_at?: string;
  last_status?: number;
  last_error?: string;
  delivered_at?: string;
}

/** Checks a Holdfast webhook's Standard Webhooks signature and timestamp (default tolerance 300 s). */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | undefined> | { get(name: string): string | null },
  rawBody: string | Uint8Array,
  options?: { toleranceSeconds?: number; now?: Date },
): boolean;
