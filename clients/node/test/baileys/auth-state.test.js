// holdfast/baileys against the real Baileys: its own initAuthCreds and BufferJSON round-trip through Holdfast.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as baileys from 'baileys';
import { createBotManager, InvalidRequestError, NotFoundError } from 'holdfast';
import { useHoldfastAuthState } from 'holdfast/baileys';
import { Holdfast } from '../helpers/holdfast.js';
import { databaseBytes } from '../helpers/files.js';

const { BufferJSON, initAuthCreds } = baileys;
const encode = (value) => JSON.stringify(value, BufferJSON.replacer);

describe('holdfast/baileys useHoldfastAuthState', () => {
  const server = new Holdfast({ users: ['alice', 'bob'] });
  let botManager;

  before(async () => {
    await server.setup();
    botManager = createBotManager({ baseUrl: server.baseUrl, apiKey: server.keys.alice });
  });
  after(() => server.stop());

  test("Baileys' own creds round-trip byte for byte", async () => {
    await botManager.startSession({ session_id: 'bl1' });
    const { state, saveCreds } = await useHoldfastAuthState(botManager, 'bl1', { baileys });
    assert.equal(typeof state.creds.registrationId, 'number');
    assert.ok(Buffer.isBuffer(state.creds.noiseKey.private));
    // Baileys changes creds in place and then calls saveCreds.
    Object.assign(state.creds, { me: { id: '15551234567:1@s.whatsapp.net', name: 'bot' }, registered: true });
    await saveCreds();

    const reloaded = await useHoldfastAuthState(botManager, 'bl1', { baileys });
    assert.equal(encode(reloaded.state.creds), encode(state.creds));
    assert.ok(reloaded.state.creds.noiseKey.private.equals(state.creds.noiseKey.private));
    assert.ok(reloaded.state.creds.signedIdentityKey.public.equals(state.creds.signedIdentityKey.public));

    // A fresh session starts from Baileys' initAuthCreds shape.
    await botManager.startSession({ session_id: 'bl-fresh' });
    const fresh = await useHoldfastAuthState(botManager, 'bl-fresh', { baileys });
    assert.deepEqual(Object.keys(fresh.state.creds).sort(), Object.keys(initAuthCreds()).sort());
  });

  test('signal keys are stored per key, one transaction per set; null deletes; nothing readable in the file or by another user', async () => {
    await botManager.startSession({ session_id: 'bl2' });
    const { state } = await useHoldfastAuthState(botManager, 'bl2', { baileys });
    const preKeys = {};
    for (let i = 1; i <= 50; i++) preKeys[String(i)] = { private: randomBytes(32), public: randomBytes(33) };
    const session = { 'alice@s.whatsapp.net.0': { _sessions: { [randomBytes(8).toString('base64')]: { registrationId: 7 } }, version: 'v1' } };
    const syncKey = { keyData: randomBytes(32), fingerprint: { rawId: 1, currentIndex: 2, deviceIndexes: [0, 1] }, timestamp: 1733000000 };

    const auditBefore = (await botManager.sessionEvents('bl2', { limit: 1000 })).filter((e) => e.action === 'bot.auth_keys').length;
    await state.keys.set({ 'pre-key': preKeys, session, 'app-state-sync-key': { AAAAAFeH: syncKey } });
    const audits = (await botManager.sessionEvents('bl2', { limit: 1000 })).filter((e) => e.action === 'bot.auth_keys');
    assert.equal(audits.length, auditBefore + 1, 'one set is one change');
    assert.match(audits[0].detail, /52 keys stored, 0 deleted/);

    const got = await state.keys.get('pre-key', ['1', '2', '50', '51']);
    assert.deepEqual(Object.keys(got).sort(), ['1', '2', '50']);
    assert.ok(got['1'].private.equals(preKeys['1'].private));
    assert.ok(got['50'].public.equals(preKeys['50'].public));
    assert.equal(encode((await state.keys.get('session', ['alice@s.whatsapp.net.0']))['alice@s.whatsapp.net.0']), encode(session['alice@s.whatsapp.net.0']));
    const sync = (await state.keys.get('app-state-sync-key', ['AAAAAFeH'])).AAAAAFeH;
    assert.ok(sync instanceof baileys.proto.Message.AppStateSyncKeyData, 'app-state-sync-key comes back as its proto');
    assert.ok(Buffer.from(sync.keyData).equals(syncKey.keyData));

    // Changing one key leaves the others as they are; null deletes.
    const replacement = { private: randomBytes(32), public: randomBytes(33) };
    await state.keys.set({ 'pre-key': { 1: null, 2: replacement } });
    const after = await state.keys.get('pre-key', ['1', '2', '3']);
    assert.deepEqual(Object.keys(after).sort(), ['2', '3']);
    assert.ok(after['2'].private.equals(replacement.private));
    assert.ok(after['3'].private.equals(preKeys['3'].private));
    // The login-state blob is untouched: keys live in their own rows.
    assert.equal(await botManager.loadAuthState('bl2'), null);

    // A set with one bad key changes nothing at all.
    const bad = await botManager
      .setAuthKeys('bl2', { 'pre-key': { 3: null, 4: null }, 'bad type!': { x: 'y' } })
      .catch((e) => e);
    assert.ok(bad instanceof InvalidRequestError, String(bad));
    assert.deepEqual(Object.keys(await state.keys.get('pre-key', ['3', '4'])).sort(), ['3', '4']);

    const database = await databaseBytes(server);
    for (const id of ['3', '25', '50']) {
      assert.equal(database.indexOf(preKeys[id].private), -1, `pre-key ${id} private bytes in the database`);
      assert.equal(database.indexOf(Buffer.from(preKeys[id].private.toString('base64'))), -1, `pre-key ${id} base64 in the database`);
    }
    assert.equal(database.indexOf(Buffer.from(syncKey.keyData.toString('base64'))), -1);

    const bob = createBotManager({ baseUrl: server.baseUrl, apiKey: server.keys.bob });
    await assert.rejects(bob.getAuthKeys('bl2', 'pre-key', ['3']), NotFoundError);
    await assert.rejects(useHoldfastAuthState(bob, 'bl2', { baileys }), NotFoundError);
  });
});
