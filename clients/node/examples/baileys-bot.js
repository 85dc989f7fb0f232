// A Baileys bot whose login (creds and every signal key) lives in Holdfast: restart it, or move it to another
// machine, and it reconnects without a new scan. Its QR, connection state and last message show in Holdfast
// (`holdfast bot show bot1`, `holdfast bot qr bot1`, the dashboard); `holdfast bot end bot1` stops it.
//
//   HOLDFAST_URL=http://127.0.0.1:7400 HOLDFAST_KEY=hf_... node baileys-bot.js bot1
//
// Pairing needs a phone: scan the QR (printed by `holdfast bot qr bot1`) with WhatsApp > Linked devices.
import * as baileys from 'baileys';
import { createBotManager } from 'holdfast';
import { useHoldfastAuthState } from 'holdfast/baileys';

const makeWASocket = baileys.makeWASocket ?? baileys.default;
const { DisconnectReason } = baileys;
const sessionId = process.argv[2] ?? 'bot1';
const botManager = createBotManager({ baseUrl: process.env.HOLDFAST_URL ?? 'http://127.0.0.1:7400', apiKey: process.env.HOLDFAST_KEY });

await botManager.startSession({ session_id: sessionId }); // looks bot1 up, or creates it
const { state, saveCreds } = await useHoldfastAuthState(botManager, sessionId, { baileys });
let socket;

function connect() {
  socket = makeWASocket({ auth: state });
  socket.ev.on('creds.update', saveCreds);
  socket.ev.on('connection.update', async ({ connection, lastDisconnect, qr }) => {
    if (qr) {
      await botManager.setQr(sessionId, qr);
      await botManager.setConnection(sessionId, 'awaiting_qr');
      console.log(`Scan the QR: holdfast bot qr ${sessionId}`);
    }
    if (connection === 'open') {
      await botManager.setConnection(sessionId, 'connected');
      console.log(`${sessionId} connected`);
    }
    if (connection === 'close') {
      const code = lastDisconnect?.error?.output?.statusCode;
      if (code === DisconnectReason.loggedOut) {
        await botManager.setConnection(sessionId, 'logged_out', { code, reason: 'logged out on the phone' });
        process.exit(1);
      }
      await botManager.setConnection(sessionId, 'reconnecting', { code, reason: lastDisconnect?.error?.message });
      connect();
    }
  });
  socket.ev.on('messages.upsert', async ({ messages }) => {
    for (const message of messages) {
      const text = message.message?.conversation ?? message.message?.extendedTextMessage?.text;
      if (text) await botManager.recordMessage(sessionId, text, { at: new Date(Number(message.messageTimestamp) * 1000) });
    }
  });
}

connect();
botManager.onCommand(sessionId, async ({ command }) => {
  if (command === 'end') {
    console.log(`${sessionId} was ended in Holdfast; stopping.`);
    socket?.end(undefined);
    process.exit(0);
  }
});
