import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AuthenticationError,
  ConflictError,
  ConnectionError,
  InvalidRequestError,
  NotFoundError,
  createBotManager,
} from '../src/index.js';
import { Holdfast, until } from './helpers/holdfast.js';

describe('bot sessions against a live Holdfast', () => {
  const server = new Holdfast({ users: ['alice', 'bob'] });
  let botManager;
  let bob;

  before(async () => {
    await server.setup();
    botManager = createBotManager({ baseUrl: server.baseUrl, apiKey: server.keys.alice });
    bob = createBotManager({ baseUrl: server.baseUrl, apiKey: server.keys.bob });
  });
  after(() => server.stop());

  test("the design record's flow: start, lookup returns the same session, QR, message, end", async () => {
    const started = await botManager.startSession({ session_id: 'bot1' });
    assert.equal(started.session_id, 'bot1');
    assert.equal(started.status, 'active');
    assert.equal(started.bot_type, 'bridge');
    assert.equal(started.created, true);

    const again = await botManager.startSession({ session_id: 'bot1' });
    assert.equal(again.created, false);
    assert.equal(again.session_id, 'bot1');
    assert.equal(again.created_at, started.created_at);

    const withQr = await botManager.setQr('bot1', '2@abc,def,ghi');
    assert.equal(withQr.qr_data, '2@abc,def,ghi');

    const at = new Date('2026-12-01T10:00:00Z');
    const withMessage = await botManager.recordMessage('bot1', 'hello', { at });
    assert.equal(withMessage.last_message, 'hello');

    const looked = await botManager.getSession('bot1');
    assert.equal(looked.last_message, 'hello');
    assert.equal(looked.qr_data, '2@abc,def,ghi');

    const ended = await botManager.endSession('bot1');
    assert.equal(ended.status, 'inactive');
    assert.equal(ended.qr_data, null);
    assert.equal((await botManager.getSession('bot1')).status, 'inactive');

    // Starting it again reactivates the same session, keeping its last message.
    const reactivated = await botManager.startSession({ session_id: 'bot1' });
    assert.equal(reactivated.status, 'active');
    assert.equal(reactivated.last_message, 'hello');
    assert.equal(reactivated.created, false);
  });

  test('getQr: numbered, long-polls for a newer one, null when none came', async () => {
    await botManager.startSession({ session_id: 'qr' });
    const stored = await botManager.setQr('qr', '2@one');
    assert.equal(stored.qr_seq, 1);
    const current = await botManager.getQr('qr');
    assert.equal(current.seq, 1);
    assert.match(current.data, /\S/);
    assert.ok(!Number.isNaN(Date.parse(current.expiresAt)));
    assert.equal(await botManager.getQr('qr', { afterSeq: 1, wait: 0.3 }), null);
    const waiting = botManager.getQr('qr', { afterSeq: 1, wait: 20 });
    await new Promise((r) => setTimeout(r, 200));
    await botManager.setQr('qr', '2@two');
    assert.equal((await waiting).seq, 2);
    const png = await botManager.getQr('qr', { format: 'png' });
    assert.equal(png.data.subarray(1, 4).toString(), 'PNG');
  });

  test('an older message (runtime timestamp, ISO string) does not replace a newer one', async () => {
    await botManager.startSession({ session_id: 'forward' });
    await botManager.recordMessage('forward', 'newer', { at: '2026-12-01T10:00:05Z' });
    const after = await botManager.recordMessage('forward', 'older', { at: '2026-12-01T10:00:01Z' });
    assert.equal(after.last_message, 'newer');
    assert.throws(() => botManager.recordMessage('forward', 'x', { at: 'not a date' }), TypeError);
  });

  test('setConnection sends state, reason and code; the server refuses illegal moves', async () => {
    const started = await botManager.startSession({ session_id: 'conn' });
    assert.equal(started.connection.state, 'starting');
    const session = await botManager.setConnection('conn', 'disconnected', { reason: 'connection lost', code: 428 });
    assert.equal(session.connection.state, 'disconnected');
    assert.equal(session.connection.reason, 'connection lost');
    assert.equal(session.connection.code, 428);
    assert.equal(session.connection_detail, 'disconnected: connection lost (428)');
    assert.throws(() => botManager.setConnection('conn', 'sleeping'), TypeError);

    await botManager.setQr('conn', '2@qr');
    const connected = await botManager.setConnection('conn', 'connected');
    assert.equal(connected.qr_data, null, 'a connected session never keeps a QR');
    const refused = await botManager.setConnection('conn', 'awaiting_qr').catch((e) => e);
    assert.ok(refused instanceof ConflictError, String(refused));
    assert.match(refused.detail, /from 'connected' to 'awaiting_qr'/);
    const afterMessage = await botManager.recordMessage('conn', 'hi');
    assert.equal(afterMessage.connection.state, 'connected', 'messages do not change the connection state');
  });

  test('getSession is null for none, listSessions pages through everything', async () => {
    assert.equal(await botManager.getSession('nobody-here'), null);
    for (let i = 0; i < 7; i++) await botManager.startSession({ session_id: `list-${i}` });
    const all = await botManager.listSessions({ pageSize: 3 });
    const ids = all.map((s) => s.session_id);
    for (let i = 0; i < 7; i++) assert.ok(ids.includes(`list-${i}`), `list-${i} missing from ${ids}`);
    assert.deepEqual(ids, [...ids].sort());
    const inactive = await botManager.listSessions({ status: 'inactive' });
    assert.ok(inactive.every((s) => s.status === 'inactive'));
  });

  test('errors are typed and carry the problem details', async () => {
    const invalid = await botManager.startSession({ session_id: 'bad id with spaces' }).catch((e) => e);
    assert.ok(invalid instanceof InvalidRequestError, String(invalid));
    assert.equal(invalid.status, 400);
    assert.equal(invalid.problem.status, 400);
    assert.ok(invalid.detail.length > 10);

    const missing = await botManager.setQr('no-such-bot', 'x').catch((e) => e);
    assert.ok(missing instanceof NotFoundError, String(missing));
    assert.equal(missing.status, 404);
    assert.match(missing.detail, /no-such-bot/);

    // bob cannot see or take alice's session.
    await botManager.startSession({ session_id: 'alices' });
    assert.equal(await bob.getSession('alices'), null);
    const taken = await bob.startSession({ session_id: 'alices' }).catch((e) => e);
    assert.ok(taken instanceof ConflictError || taken instanceof NotFoundError, String(taken));

    const anonymous = createBotManager({ baseUrl: server.baseUrl, apiKey: 'hf_wrong' });
    const denied = await anonymous.listSessions().catch((e) => e);
    assert.ok(denied instanceof AuthenticationError, String(denied));
    assert.equal(denied.status, 401);

    const nowhere = createBotManager({ baseUrl: 'http://127.0.0.1:9', apiKey: 'x' });
    const refused = await nowhere.getSession('a').catch((e) => e);
    assert.ok(refused instanceof ConnectionError, String(refused));
  });

  test('onCommand hears end when the session is ended elsewhere, and an end it missed when it connects', async () => {
    await botManager.startSession({ session_id: 'cmd' });
    const commands = [];
    const listener = botManager.onCommand('cmd', (command) => {
      commands.push(command);
    });
    // The stream is open once the server holds the listener; end it from another client (the CLI/dashboard would).
    await new Promise((r) => setTimeout(r, 300));
    const admin = createBotManager({ baseUrl: server.baseUrl, apiKey: server.keys.alice });
    await admin.endSession('cmd');
    await until(() => commands.some((c) => c.command === 'end'), 'the end command');
    assert.equal(commands.find((c) => c.command === 'end').session_id, 'cmd');
    await listener.close();

    // A runtime that was away when the session ended hears the end when it connects.
    const late = [];
    const second = botManager.onCommand('cmd', (command) => late.push(command));
    await until(() => late.length === 1, 'the missed end command');
    assert.equal(late[0].command, 'end');
    await second.close();

    const unknown = botManager.onCommand('no-such-bot', () => {});
    await assert.rejects(unknown.closed, NotFoundError);
  });

  test('login state round-trips byte for byte and null deletes it', async () => {
    await botManager.startSession({ session_id: 'auth' });
    assert.equal(await botManager.loadAuthState('auth'), null);
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
    await botManager.saveAuthState('auth', bytes);
    assert.deepEqual(await botManager.loadAuthState('auth'), bytes);
    await botManager.saveAuthState('auth', null);
    assert.equal(await botManager.loadAuthState('auth'), null);
    await assert.rejects(botManager.loadAuthState('no-such-bot'), NotFoundError);
  });
});
