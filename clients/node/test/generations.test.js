import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, NotFoundError, createClient } from '../src/index.js';
import { Holdfast, until } from './helpers/holdfast.js';

describe('generations against a live Holdfast', () => {
  // Slow enough to pause, kill and restart in the middle of a generation.
  const server = new Holdfast({ env: { Scripted__TokensPerSecond: '25' } });
  let client;

  before(async () => {
    await server.setup();
    client = createClient({ baseUrl: server.baseUrl, apiKey: server.keys.alice });
  });
  after(() => server.stop());

  const request = (seed) => ({
    model: 'scripted',
    input: 'Tell me about harbours',
    parameters: { seed, max_tokens: 60 },
  });

  test('start, pause, resume, follow to the end, cancel; an illegal control is a ConflictError', async () => {
    const started = await client.generations.start({ ...request(7), idempotencyKey: 'g-1' });
    assert.equal(started.created, true);
    const retried = await client.generations.start({ ...request(7), idempotencyKey: 'g-1' });
    assert.equal(retried.id, started.id);
    assert.equal(retried.created, false);

    const paused = await client.generations.pause(started.id, { reason: 'coffee', wait: 5 });
    assert.equal(paused.status, 'paused');
    await client.generations.resume(started.id);
    const { text, status } = await client.generations.collect(started.id);
    assert.equal(status, 'completed');
    assert.equal(text, (await client.generations.get(started.id)).output);

    const resumeCompleted = await client.generations.resume(started.id).catch((e) => e);
    assert.ok(resumeCompleted instanceof ConflictError, String(resumeCompleted));
    assert.equal(resumeCompleted.status, 409);
    assert.ok(resumeCompleted.detail.length > 10);

    const other = await client.generations.start(request(8));
    const cancelled = await client.generations.cancel(other.id, { wait: 5 });
    assert.equal(cancelled.status, 'cancelled');
    await assert.rejects(client.generations.get('gen_does_not_exist'), NotFoundError);
  });

  test('follow resumes from the last seq after the server is killed with SIGKILL and restarted', async () => {
    const reference = await client.generations.start(request(11));
    const expected = (await client.generations.collect(reference.id)).text;

    const generation = await client.generations.start(request(11));
    const seqs = [];
    let text = '';
    let done;
    let killed = false;
    for await (const event of client.generations.follow(generation.id, { giveUpAfterMs: 120_000 })) {
      if (event.type === 'done') {
        done = event;
        break;
      }
      seqs.push(event.seq);
      if (event.type === 'chunk') text += event.text;
      if (!killed && seqs.length >= 10) {
        killed = true;
        await server.kill();
        // Restarted in the background while the iterator is reconnecting.
        server.start().catch((error) => console.error(error));
      }
    }

    assert.ok(killed, 'the server was killed mid-stream');
    assert.equal(done?.status, 'completed');
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seq ${seqs[i]} after ${seqs[i - 1]}`);
    assert.equal(text, expected, 'no gap, no duplicate: the text equals the uninterrupted one');
    await until(async () => (await client.generations.get(generation.id)).status === 'completed', 'completed');
  });
});
