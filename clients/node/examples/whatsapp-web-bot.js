// A whatsapp-web.js bot whose RemoteAuth session (the zipped browser profile) is kept, encrypted, in Holdfast.
//
//   HOLDFAST_URL=http://127.0.0.1:7400 HOLDFAST_KEY=hf_... node whatsapp-web-bot.js bot1
//
// whatsapp-web.js drives a Chromium (installed by puppeteer). Pairing needs a phone: scan the QR
// (`holdfast bot qr bot1`) with WhatsApp > Linked devices. RemoteAuth client ids allow letters, digits, - and _.
import wweb from 'whatsapp-web.js';
import { createBotManager } from 'holdfast';
import { HoldfastRemoteAuthStore } from 'holdfast/whatsapp-web';

const { Client, RemoteAuth } = wweb;
const sessionId = process.argv[2] ?? 'bot1';
const dataPath = './.wwebjs_auth';
const botManager = createBotManager({ baseUrl: process.env.HOLDFAST_URL ?? 'http://127.0.0.1:7400', apiKey: process.env.HOLDFAST_KEY });

await botManager.startSession({ session_id: sessionId });
const store = new HoldfastRemoteAuthStore(botManager, { dataPath });
const client = new Client({
  authStrategy: new RemoteAuth({ clientId: sessionId, store, dataPath, backupSyncIntervalMs: 300_000 }),
  puppeteer: { args: ['--no-sandbox'] },
});

client.on('qr', async (qr) => {
  await botManager.setQr(sessionId, qr);
  await botManager.setConnection(sessionId, 'awaiting_qr');
  console.log(`Scan the QR: holdfast bot qr ${sessionId}`);
});
client.on('ready', () => botManager.setConnection(sessionId, 'connected'));
client.on('remote_session_saved', () => console.log('login saved in Holdfast'));
client.on('message', (message) => botManager.recordMessage(sessionId, message.body, { at: new Date(message.timestamp * 1000) }));
client.on('disconnected', (reason) => botManager.setConnection(sessionId, reason === 'LOGOUT' ? 'logged_out' : 'disconnected', { reason }));

botManager.onCommand(sessionId, async ({ command }) => {
  if (command === 'end') {
    await client.destroy();
    process.exit(0);
  }
});
await botManager.setConnection(sessionId, 'starting');
await client.initialize();
