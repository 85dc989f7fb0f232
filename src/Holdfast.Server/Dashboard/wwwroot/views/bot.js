import { get, post, subscribe, enc, ApiError } from '../api.js';
import { h, chip, dateTime, splitConnection, isNewer } from '../format.js';
import { auditSection } from './audit.js';
import { deliveriesSection } from './deliveries.js';

/**
 * One bot session: its current QR code as an image (replaced as soon as a new one arrives), connection state and
 * reason, last message, and an End button; its webhook deliveries and the audit trail below. Live from the sessions
 * feed (which also says when a delivery attempt was recorded).
 */
export function mountBot(root, { id }) {
  document.title = `${id} · Holdfast`;
  const path = `/api/v1/bots/${enc(id)}`;
  let row = null;

  const statusText = h('strong', { id: 'status', class: 'status-text' }, '…');
  const connection = h('dd', { id: 'connection' }, '—');
  const reason = h('dd', { id: 'connection-reason' }, '—');
  const lastMessage = h('dd', { id: 'last-message' }, '—');
  const botType = h('dd', { id: 'bot-type' }, '—');
  const owner = h('dd', { id: 'owner' }, '—');
  const qr = h('img', { id: 'qr', class: 'qr', width: 264, height: 264, hidden: true, alt: '' });
  const qrNote = h('p', { id: 'qr-note', class: 'muted' }, 'Loading…');
  const end = h('button', { type: 'button', id: 'end', class: 'danger', disabled: true }, 'End session');
  const actionMessage = h('p', { class: 'action-message', role: 'status' });
  const live = h('span', { class: 'live-state', role: 'status' }, 'Connecting…');
  const audit = auditSection(path);
  const deliveries = deliveriesSection(path);

  root.append(
    h('p', { class: 'breadcrumb' }, h('a', { href: '/' }, '← All sessions')),
    h('div', { class: 'title-row' }, h('h1', {}, 'Bot ', h('span', { class: 'session-id' }, id)), live),
    h('div', { class: 'bot-grid' },
      h('section', { class: 'card', 'aria-labelledby': 'qr-heading' },
        h('h2', { id: 'qr-heading' }, 'QR code'),
        qr,
        qrNote),
      h('section', { class: 'card state', 'aria-label': 'State and controls' },
        h('p', { class: 'status-line' }, 'Status: ', statusText),
        h('dl', { class: 'details' },
          h('dt', {}, 'Connection'), connection,
          h('dt', {}, 'Reason'), reason,
          h('dt', {}, 'Last message'), lastMessage,
          h('dt', {}, 'Bot type'), botType,
          h('dt', {}, 'Owner'), owner),
        h('div', { class: 'controls' }, end),
        actionMessage)),
    deliveries.section,
    audit.section);

  end.addEventListener('click', async () => {
    end.disabled = true;
    actionMessage.textContent = '';
    try {
      await post(`${path}/end`, {});
      actionMessage.textContent = 'Session ended.';
    } catch (err) {
      actionMessage.textContent = err.message;
      draw();
    }
  });

  function draw() {
    if (!row) return;
    statusText.replaceChildren(chip(row.status));
    statusText.dataset.status = row.status;
    const [state, why] = splitConnection(row.connection);
    connection.textContent = state;
    reason.textContent = why ?? '—';
    lastMessage.replaceChildren(row.last_message
      ? h('span', {}, h('q', {}, row.last_message), row.last_message_at ? h('span', { class: 'muted' }, ` at ${dateTime(row.last_message_at)}`) : null)
      : 'none yet');
    botType.textContent = row.bot_type;
    owner.textContent = row.owner ?? '—';
    end.disabled = row.status !== 'active';
    if (row.has_qr) {
      // A new version of the session is a new address, so the browser fetches the new code.
      const src = `${path}/qr?format=png&v=${row.version}`;
      if (qr.getAttribute('src') !== src) qr.src = src;
      qr.alt = `QR code to pair bot ${id} (version ${row.version}): scan it with the device that should become the bot`;
      qr.dataset.version = String(row.version);
      qr.hidden = false;
      qrNote.textContent = row.bot_type === 'web'
        ? 'Scan it with a phone, or open its link in a browser, to pair that device with the bot.'
        : 'Scan it with the app the bot runtime logs in to.';
    } else {
      qr.hidden = true;
      qr.removeAttribute('src');
      delete qr.dataset.version;
      qrNote.textContent = row.status === 'inactive'
        ? 'No QR code: the session has ended.'
        : 'No QR code now: the bot is paired, or its runtime has not reported one yet.';
    }
  }

  const feed = subscribe(`/api/v1/dashboard/sessions/stream?kind=bot&id=${enc(id)}`, {
    snapshot: (d) => apply(d.items),
    upsert: (d) => apply(d.items),
    deliveries: () => deliveries.refresh(),
  }, (s) => {
    live.textContent = s === 'live' ? 'Live' : s === 'signed-out' ? 'Signed out' : 'Reconnecting…';
    live.dataset.state = s;
  });

  function apply(items) {
    for (const r of items) {
      if (r.id === id && isNewer(row, r)) {
        row = r;
        audit.refresh();
        deliveries.refresh();
      }
    }
    draw();
  }

  (async () => {
    try {
      await get(path);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        feed.close();
        root.replaceChildren(
          h('p', { class: 'breadcrumb' }, h('a', { href: '/' }, '← All sessions')),
          h('h1', {}, 'Bot not found'),
          h('p', {}, `There is no bot session ${id} that you can see.`));
      }
    }
  })();

  return { dispose() { feed.close(); } };
}
