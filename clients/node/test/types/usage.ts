// Compiled (never run) by types.test.js: every call of the package, typed as a TypeScript user writes it.
import { createBotManager, ConflictError, NotFoundError, verifyWebhook, type BotSession, type FollowEvent, type Webhook } from 'holdfast';
import { HoldfastRemoteAuthStore } from 'holdfast/whatsapp-web';
import { useHoldfastAuthState } from 'holdfast/baileys';

declare const Buffer: { from(text: string): Uint8Array };

export async function usage(): Promise<void> {
  const botManager = createBotManager({ baseUrl: 'http://127.0.0.1:7400', apiKey: 'hf_x' });
  const started = await botManager.startSession({ session_id: 'bot1' });
  const created: boolean = started.created;
  const found: BotSession | null = await botManager.getSession('bot1');
  const all: BotSession[] = await botManager.listSessions({ status: 'active' });
  await botManager.setQr('bot1', '2@abc');
  const qr = await botManager.getQr('bot1', { afterSeq: 1, wait: 10 });
  if (qr) console.log(qr.seq, qr.expiresAt);
  await botManager.recordMessage('bot1', 'hi', { at: new Date() });
  await botManager.recordMessage('bot1', 'hi', { at: '2026-12-01T10:00:00Z' });
  await botManager.setConnection('bot1', 'disconnected', { reason: 'lost', code: 428 });
  const ended: BotSession = await botManager.endSession('bot1');
  const listener = botManager.onCommand('bot1', (command) => {
    if (command.command === 'end') void listener.close();
  });
  await listener.closed;
  await botManager.saveAuthState('bot1', Buffer.from('x'));
  const state = await botManager.loadAuthState('bot1');
  await botManager.setAuthKeys('bot1', { 'pre-key': { '1': 'v', '2': null } });
  const keys: Record<string, unknown> = await botManager.getAuthKeys('bot1', 'pre-key', ['1']);

  const generation = await botManager.generations.start({ model: 'scripted', input: 'Hello', parameters: { seed: 1 }, idempotencyKey: 'k' });
  await botManager.generations.pause(generation.id, { reason: 'coffee', wait: 5 });
  await botManager.generations.resume(generation.id);
  for await (const event of botManager.generations.follow(generation.id, { after: 0 })) {
    const e: FollowEvent = event;
    if (e.type === 'chunk') console.log(e.text.length, e.seq);
  }
  await botManager.generations.cancel(generation.id);
  try {
    await botManager.generations.resume(generation.id);
  } catch (error) {
    if (error instanceof ConflictError || error instanceof NotFoundError) console.log(error.status, error.problem?.detail);
  }

  const store = new HoldfastRemoteAuthStore(botManager, { dataPath: './.wwebjs_auth' });
  const exists: boolean = await store.sessionExists({ session: 'RemoteAuth-bot1' });
  const { state: auth, saveCreds } = await useHoldfastAuthState(botManager, 'bot1');
  await auth.keys.set({ 'pre-key': { '1': null } });
  await saveCreds();
  void [created, found, all, ended, state, keys, exists];
}

// Webhooks (issue 12, item 7).
async function webhooks(manager: ReturnType<typeof createBotManager>): Promise<void> {
  const created = await manager.createWebhook({ url: 'https://hooks.example.com/x', eventTypes: ['message.received'] });
  const secret: string = created.secret;
  const all: Webhook[] = await manager.listWebhooks();
  const log = await manager.webhookDeliveries(created.id, { limit: 10 });
  const status: 'pending' | 'delivered' | 'failed' = log.items[0].status;
  const ok: boolean = verifyWebhook(secret, { 'webhook-id': 'msg_1', 'webhook-timestamp': '1', 'webhook-signature': 'v1,x' }, '{}');
  await manager.deleteWebhook(all[0].id);
  void status;
  void ok;
}
void webhooks;
