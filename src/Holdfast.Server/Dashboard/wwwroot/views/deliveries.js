import { get } from '../api.js';
import { h, dateTime } from '../format.js';

/**
 * The newest webhook deliveries about one session, across its owner's subscriptions (newest first): the event, where
 * it stands (pending, delivered, failed) with its attempts, the receiver's last answer or error, and when. Read again
 * whenever the session changes (a change writes its events) and when the server says an attempt was recorded.
 */
export function deliveriesSection(path) {
  const tbody = h('tbody');
  const note = h('p', { class: 'muted', id: 'deliveries-note' }, 'Loading…');
  const table = h('table', { class: 'deliveries', hidden: true },
    h('caption', { class: 'visually-hidden' }, 'Webhook deliveries, newest first'),
    h('thead', {}, h('tr', {}, ['When', 'Event', 'Status', 'Attempts', 'Last answer', 'Subscription'].map((t) => h('th', { scope: 'col', class: t === 'Attempts' ? 'num' : null }, t)))),
    tbody);
  const section = h('section', { class: 'card', 'aria-labelledby': 'deliveries-heading' },
    h('h2', { id: 'deliveries-heading' }, 'Webhook deliveries'),
    note,
    h('div', { class: 'table-wrap' }, table));

  const answer = (d) => {
    if (d.last_error) return h('span', { class: 'error-text' }, d.last_error);
    if (d.last_status) return `HTTP ${d.last_status}`;
    return d.status === 'pending' ? 'not sent yet' : '—';
  };
  const when = (d) => {
    if (d.status === 'delivered' && d.delivered_at) return ['delivered ', h('time', { datetime: d.delivered_at }, dateTime(d.delivered_at))];
    if (d.status === 'failed' && d.last_attempt_at) return ['given up ', h('time', { datetime: d.last_attempt_at }, dateTime(d.last_attempt_at))];
    if (d.status === 'pending' && d.next_attempt_at && d.attempts > 0) return ['next try ', h('time', { datetime: d.next_attempt_at }, dateTime(d.next_attempt_at))];
    return [h('time', { datetime: d.created_at }, dateTime(d.created_at))];
  };

  let inFlight = null;
  let again = false;
  async function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = (async () => {
      try {
        const page = await get(`${path}/webhook-deliveries?limit=20`);
        tbody.replaceChildren(...page.items.map((d) => h('tr', { dataset: { id: d.id, status: d.status } },
          h('td', { 'data-label': 'When' }, when(d)),
          h('td', { 'data-label': 'Event' }, h('code', { title: `webhook-id ${d.id}` }, d.event_type)),
          h('td', { 'data-label': 'Status' }, h('span', { class: `chip chip-delivery-${d.status}` }, d.status)),
          h('td', { 'data-label': 'Attempts', class: 'num' }, String(d.attempts)),
          h('td', { 'data-label': 'Last answer' }, answer(d)),
          h('td', { 'data-label': 'Subscription' }, h('code', {}, d.subscription_id)))));
        table.hidden = page.items.length === 0;
        note.textContent = page.items.length === 0
          ? 'No webhook deliveries about this bot yet. Subscribe a URL with: holdfast webhooks add URL'
          : `${page.items.length} most recent deliveries about this bot, newest first.`;
      } catch (err) {
        note.textContent = `The webhook deliveries could not be read: ${err.message}`;
      }
    })();
    await inFlight;
    inFlight = null;
    if (again) { again = false; await refresh(); }
  }
  return { section, refresh };
}
