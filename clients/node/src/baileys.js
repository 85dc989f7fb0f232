// holdfast/baileys: Baileys' auth state kept in Holdfast, like useMultiFileAuthState but with every signal key
// stored per key (encrypted at rest) and each `keys.set` applied in one transaction.
//
//   import makeWASocket from 'baileys';
//   const { state, saveCreds } = await useHoldfastAuthState(botManager, 'bot1');
//   const sock = makeWASocket({ auth: state });
//   sock.ev.on('creds.update', saveCreds);

const CREDS_TYPE = 'creds';
const CREDS_ID = 'creds';

/**
 * Loads (or creates) the Baileys auth state of Holdfast bot session `sessionId` (which must exist:
 * `botManager.startSession(...)` first). `options.baileys` is the Baileys module; by default 'baileys' is imported,
 * then '@whiskeysockets/baileys'.
 * @returns {Promise<{ state: { creds: object, keys: { get(type: string, ids: string[]): Promise<object>, set(data: object): Promise<void> } }, saveCreds(): Promise<void> }>}
 */
export async function useHoldfastAuthState(manager, sessionId, { baileys } = {}) {
  if (!manager || typeof manager.getAuthKeys !== 'function') {
    throw new TypeError('useHoldfastAuthState needs the manager from createBotManager().');
  }
  const lib = baileys ?? (await importBaileys());
  const { initAuthCreds, BufferJSON, proto } = lib;
  if (typeof initAuthCreds !== 'function' || !BufferJSON) {
    throw new TypeError('The Baileys module given to useHoldfastAuthState lacks initAuthCreds or BufferJSON.');
  }

  const encode = (value) => JSON.stringify(value, BufferJSON.replacer);
  const decode = (text) => JSON.parse(text, BufferJSON.reviver);

  const stored = await manager.getAuthKeys(sessionId, CREDS_TYPE, [CREDS_ID]);
  const creds = stored[CREDS_ID] != null ? decode(stored[CREDS_ID]) : initAuthCreds();

  return {
    state: {
      creds,
      keys: {
        async get(type, ids) {
          const found = await manager.getAuthKeys(sessionId, type, ids);
          const data = {};
          for (const id of ids) {
            if (found[id] == null) continue;
            let value = decode(found[id]);
            if (type === 'app-state-sync-key' && value && proto?.Message?.AppStateSyncKeyData) {
              value = proto.Message.AppStateSyncKeyData.fromObject(value);
            }
            data[id] = value;
          }
          return data;
        },
        async set(data) {
          const changes = {};
          for (const [type, entries] of Object.entries(data ?? {})) {
            if (!entries) continue;
            changes[type] = {};
            for (const [id, value] of Object.entries(entries)) {
              changes[type][id] = value == null ? null : encode(value);
            }
          }
          if (Object.keys(changes).length > 0) await manager.setAuthKeys(sessionId, changes);
        },
      },
    },
    async saveCreds() {
      await manager.setAuthKeys(sessionId, { [CREDS_TYPE]: { [CREDS_ID]: encode(creds) } });
    },
  };
}

async function importBaileys() {
  for (const name of ['baileys', '@whiskeysockets/baileys']) {
    try {
      const module = await import(name);
      return module.initAuthCreds ? module : (module.default ?? module);
    } catch (error) {
      if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    }
  }
  throw new Error("useHoldfastAuthState needs Baileys: npm install baileys (or pass { baileys } explicitly).");
}
