import type { HoldfastClient } from './index.js';

/** A whatsapp-web.js RemoteAuth store backed by Holdfast's encrypted login state. */
export class HoldfastRemoteAuthStore {
  /** `dataPath` must be the one given to RemoteAuth (default './.wwebjs_auth/'). */
  constructor(manager: HoldfastClient, options?: { dataPath?: string; sessionId?: string });
  sessionIdFor(session: string): string;
  sessionExists(options: { session: string }): Promise<boolean>;
  save(options: { session: string }): Promise<void>;
  extract(options: { session: string; path: string }): Promise<void>;
  delete(options: { session: string }): Promise<void>;
}
