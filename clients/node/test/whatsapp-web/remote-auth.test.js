// holdfast/whatsapp-web against the real whatsapp-web.js RemoteAuth. RemoteAuth's store calls need no browser:
// beforeBrowserInitialized, storeRemoteSession and logout are driven directly, as whatsapp-web.js would.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import wweb from 'whatsapp-web.js';
import { createBotManager, NotFoundError } from 'holdfast';
import { HoldfastRemoteAuthStore } from 'holdfast/whatsapp-web';
import { Holdfast, until } from '../helpers/holdfast.js';
import { databaseBytes } from '../helpers/files.js';

const { RemoteAuth } = wweb;

function remoteAuth(store, dataPath) {
  const auth = new RemoteAuth({ clientId: 'wa1', store, dataPath, backupSyncIntervalMs: 60_000 });
  // What whatsapp-web.js's Client hands its auth strategy.
  auth.setup({ options: { puppeteer: {} }, emit() {} });
  return auth;
}

describe('holdfast/whatsapp-web RemoteAuth store', () => {
  const server = new Holdfast({ users: ['alice', 'bob'] });
  let botManager;
  let dataPath;

  before(async () => {
    await server.setup();
    botManager = createBotManager({ baseUrl: server.baseUrl, apiKey: server.keys.alice });
    dataPath = await mkdtemp(join(tmpdir(), 'holdfast-wwebjs-'));
  });
  after(async () => {
    await server.stop();
    await rm(dataPath, { recursive: true, force: true });
  });

  test('a session saved by RemoteAuth is restored by a new RemoteAuth, then deleted on logout', async () => {
    await botManager.startSession({ session_id: 'wa1' });
    const store = new HoldfastRemoteAuthStore(botManager, { dataPath });
    const first = remoteAuth(store, dataPath);

    await first.beforeBrowserInitialized();
    assert.equal(await store.sessionExists({ session: 'RemoteAuth-wa1' }), false);

    // The browser profile whatsapp-web.js would have written; random bytes so the zip cannot shrink them away.
    const profile = {
      'Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/000003.log': randomBytes(20_000),
      'Default/Local Storage/leveldb/000005.ldb': randomBytes(5_000),
      'Default/Preferences': Buffer.from('{"profile":{"name":"holdfast-test"}}'),
    };
    for (const [file, bytes] of Object.entries(profile)) {
      const path = join(first.userDataDir, file);
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, bytes);
    }

    await first.storeRemoteSession({ emit: true });
    assert.equal(await store.sessionExists({ session: 'RemoteAuth-wa1' }), true);
    const zip = await botManager.loadAuthState('wa1');
    assert.equal(zip.subarray(0, 2).toString(), 'PK', 'the stored state is RemoteAuth zip');

    // The database holds it encrypted: no 32-byte run of the zip (or of a profile file) is in the file.
    const database = await databaseBytes(server);
    for (const offset of [0, Math.floor(zip.length / 2), zip.length - 40]) {
      assert.equal(database.indexOf(zip.subarray(offset, offset + 32)), -1, `zip bytes at ${offset} found in the database`);
    }
    assert.equal(database.indexOf(profile['Default/Local Storage/leveldb/000005.ldb'].subarray(0, 32)), -1);

    // Another user's key cannot read it.
    const bob = createBotManager({ baseUrl: server.baseUrl, apiKey: server.keys.bob });
    const thief = new HoldfastRemoteAuthStore(bob, { dataPath: join(dataPath, 'bob') });
    await assert.rejects(thief.extract({ session: 'RemoteAuth-wa1', path: join(dataPath, 'bob.zip') }), NotFoundError);

    // A new process: the profile is gone locally; RemoteAuth restores it from Holdfast.
    await rm(first.userDataDir, { recursive: true, force: true });
    const second = remoteAuth(store, dataPath);
    await second.beforeBrowserInitialized();
    for (const [file, bytes] of Object.entries(profile)) {
      if (!file.startsWith('Default/IndexedDB') && !file.startsWith('Default/Local Storage')) continue; // RemoteAuth keeps only these
      const path = join(second.userDataDir, file);
      // unzipper finishes writing shortly after the promise resolves.
      const restored = await until(async () => {
        const content = await readFile(path);
        return content.length === bytes.length ? content : null;
      }, `${file} restored`);
      assert.ok(restored.equals(bytes), `${file} restored byte for byte`);
    }

    await second.logout();
    assert.equal(await store.sessionExists({ session: 'RemoteAuth-wa1' }), false);
    assert.equal(await botManager.loadAuthState('wa1'), null);
    await assert.rejects(access(second.userDataDir));
    // The bot session itself is kept (ending it is the runtime's decision).
    assert.equal((await botManager.getSession('wa1')).status, 'active');
  });
});
