import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { InvalidRequestError, NotFoundError, createBotManager, verifyWebhook } from '../src/index.js';
import { Holdfast, until } from './helpers/holdfast.js';

describe('verifyWebhook', () => {
  // The example of the Standard Webhooks specification.
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const headers = {
    'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    'webhook-timestamp': '1614265330',
    'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  };
  const body = '{"test": 2432232314}';
  const now = new Date(1614265330 * 1000);

  test('accepts the specification example, also among other signatures and as a Buffer or Headers', () => {
    assert.equal(verifyWebhook(secret, headers, body, { now }), true);
    assert.equal(verifyWebhook(secret, { ...headers, 'webhook-signature': `v1,bad ${headers['webhook-signature']}` }, body, { now }), true);
    assert.equal(verifyWebhook(secret, new Headers(headers), Buffer.from(body), { now }), true);
  });

  test('refuses a changed body, another secret, an old timestamp, missing headers', () => {
    assert.equal(verifyWebhook(secret, headers, `${body} `, { now }), false);
    assert.equal(verifyWebhook('whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', headers, body, { now }), false);
    assert.equal(verifyWebhook(secret, headers, body, { now: new Date((1614265330 + 301) * 1000) }), false);
    assert.equal(verifyWebhook(secret, { 'webhook-id': headers['webhook-id'] }, body, { now }), false);
  });
});

describe('webhooks against a live Holdfast', () => {
  const server = new Holdfast({
    users: ['alice', 'bob'],
    env: { Webhooks__AllowPrivateTargets: 'true', Webhooks__PollInterval: '00:00:00.100' },
  });
  const received = [];
  let receiver;
  let receiverUrl;
  let secret;
  let botManager;
  let bob;

  before(async () => {
    receiver = createServer((request, response) => {
      const chunks = [];
      request.on('data', (chunk) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        received.push({ headers: request.headers, body, verified: verifyWebhook(secret, request.headers, body) });
        response.writeHead(204).end();
      });
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
    await server.setup();
    botManager = createBotManager({ baseUrl: server.baseUrl, apiKey: server.keys.alice });
    bob = createBotManager({ baseUrl: server.baseUrl, apiKey: server.keys.bob });
  });
  after(async () => {
    await server.stop();
    await new Promise((resolve) => receiver.close(resolve));
  });

  test('a subscription hears the bot flow, signed; the delivery log shows each delivered; another user sees none', async () => {
    const webhook = await botManager.createWebhook({ url: receiverUrl, eventTypes: ['message.received', 'session.ended'] });
    secret = webhook.secret;
    assert.match(webhook.secret, /^whsec_/);
    assert.deepEqual(webhook.event_types, ['message.received', 'session.ended']);

    await botManager.startSession({ session_id: 'hooked' });
    await botManager.recordMessage('hooked', 'hello');
    await botManager.endSession('hooked');

    try {
      await until(() => received.length >= 2, 'both events at the receiver', 60_000);
    } catch (error) {
      // Say what the server did with them: the delivery log and the server's own log.
      const log = await botManager.webhookDeliveries(webhook.id).catch((e) => ({ error: e.message }));
      error.message += `\nreceived: ${JSON.stringify(received.map((r) => r.body))}\ndeliveries: ${JSON.stringify(log)}\nserver log:\n${(server.output ?? '').slice(-4000)}`;
      throw error;
    }
    assert.deepEqual(received.map((r) => JSON.parse(r.body).type).sort(), ['message.received', 'session.ended']);
    assert.ok(received.every((r) => r.verified));
    const log = await until(async () => {
      const page = await botManager.webhookDeliveries(webhook.id);
      return page.items.length === 2 && page.items.every((d) => d.status === 'delivered') ? page : null;
    }, 'the delivery log', 60_000);
    assert.deepEqual(log.items.map((d) => d.id).sort(), received.map((r) => r.headers['webhook-id']).sort());

    assert.deepEqual(await bob.listWebhooks(), []);
    await assert.rejects(bob.deleteWebhook(webhook.id), NotFoundError);
    assert.equal((await botManager.listWebhooks()).length, 1);
    await botManager.deleteWebhook(webhook.id);
    assert.deepEqual(await botManager.listWebhooks(), []);
  });

  test('an unknown event type is an InvalidRequestError', async () => {
    await assert.rejects(botManager.createWebhook({ url: receiverUrl, eventTypes: ['message.sent'] }), InvalidRequestError);
  });
});
