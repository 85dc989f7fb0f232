// holdfast/whatsapp-web: a RemoteAuth store for whatsapp-web.js backed by Holdfast's encrypted login state.
//
//   import wweb from 'whatsapp-web.js';
//   const store = new HoldfastRemoteAuthStore(botManager, { dataPath: './.wwebjs_auth' });
//   const client = new wweb.Client({ authStrategy: new wweb.RemoteAuth({ clientId: 'bot1', store, dataPath: './.wwebjs_auth', backupSyncIntervalMs: 300000 }) });
//
// RemoteAuth zips the browser profile into `${dataPath}/${session}.zip` and calls save({ session }) with only the
// session name, so the store is given the same dataPath to find the zip. The Holdfast session id is `sessionId` when
// given, else the RemoteAuth clientId (session 'RemoteAuth-bot1' is Holdfast session 'bot1').
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export class HoldfastRemoteAuthStore {
  #manager;
  #dataPath;
  #sessionId;

  /**
   * @param {import('./index.js').HoldfastClient} manager from createBotManager()
   * @param {{ dataPath?: string, sessionId?: string }} [options] dataPath must be RemoteAuth's (default './.wwebjs_auth/')
   */
  constructor(manager, { dataPath = './.wwebjs_auth/', sessionId } = {}) {
    if (!manager || typeof manager.loadAuthState !== 'function') {
      throw new TypeError('HoldfastRemoteAuthStore needs the manager from createBotManager().');
    }
    this.#manager = manager;
    this.#dataPath = resolve(dataPath);
    this.#sessionId = sessionId;
  }

  /** The Holdfast session id for RemoteAuth session name `session`. */
  sessionIdFor(session) {
    if (this.#sessionId) return this.#sessionId;
    if (typeof session !== 'string' || session.length === 0) throw new TypeError('RemoteAuth gave no session name.');
    return session.startsWith('RemoteAuth-') ? session.slice('RemoteAuth-'.length) : session;
  }

  /** True when Holdfast holds a saved session (the zip) for `session`. */
  async sessionExists({ session }) {
    return (await this.#manager.loadAuthState(this.sessionIdFor(session))) !== null;
  }

  /** Stores the zip RemoteAuth just wrote at `${dataPath}/${session}.zip` (encrypted at rest by Holdfast). */
  async save({ session }) {
    const zip = await readFile(join(this.#dataPath, `${session}.zip`));
    await this.#manager.saveAuthState(this.sessionIdFor(session), zip);
  }

  /** Writes the stored zip to `path` for RemoteAuth to unpack. */
  async extract({ session, path }) {
    const zip = await this.#manager.loadAuthState(this.sessionIdFor(session));
    if (zip === null) throw new Error(`Holdfast has no saved WhatsApp session for '${this.sessionIdFor(session)}'.`);
    await mkdir(dirname(resolve(path)), { recursive: true });
    await writeFile(path, zip);
  }

  /** Deletes the stored zip (RemoteAuth calls this on logout). The Holdfast bot session itself is kept. */
  async delete({ session }) {
    await this.#manager.saveAuthState(this.sessionIdFor(session), null);
  }
}
