import type { HoldfastClient } from './index.js';

export interface HoldfastSignalKeyStore {
  get(type: string, ids: string[]): Promise<Record<string, any>>;
  /** One transaction per call; a null value deletes the key. */
  set(data: Record<string, Record<string, any | null> | undefined>): Promise<void>;
}

/** Like Baileys' useMultiFileAuthState, kept in Holdfast (session `sessionId` must exist). */
export function useHoldfastAuthState(
  manager: HoldfastClient,
  sessionId: string,
  options?: { baileys?: unknown },
): Promise<{ state: { creds: any; keys: HoldfastSignalKeyStore }; saveCreds(): Promise<void> }>;
