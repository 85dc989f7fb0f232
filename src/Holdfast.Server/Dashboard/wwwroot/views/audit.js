import { get } from '../api.js';
import { h, dateTime } from '../format.js';

/** The audit trail of a session (newest first): who changed what, from which state to which, when and why. */
export function auditSection(path) {
  const tbody = h('tbody');
  const note = h('p', { class: 'muted' }, 'Loading…');
  const section = h('section', { class: 'card', 'aria-labelledby': 'audit-heading' },
    h('h2', { id: 'audit-heading' }, 'Audit trail'),
    note,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'audit' },
        h('thead', {}, h('tr', {}, ['When', 'Who', 'What', 'From → to', 'Detail'].map((t) => h('th', { scope: 'col' }, t)))),
        tbody)));
  let inFlight = null;
  let again = false;
  async function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = (async () => {
      try {
        const page = await get(`${path}/events?limit=100`);
        tbody.replaceChildren(...page.items.map((e) => h('tr', {},
          h('td', { 'data-label': 'When' }, h('time', { datetime: e.at }, dateTime(e.at))),
          h('td', { 'data-label': 'Who' }, e.actor),
          h('td', { 'data-label': 'What' }, e.action),
          h('td', { 'data-label': 'From → to' }, e.from_state || e.to_state ? `${e.from_state ?? '—'} → ${e.to_state ?? '—'}` : '—'),
          h('td', { 'data-label': 'Detail' }, e.detail ?? ''))));
        note.textContent = page.items.length === 0 ? 'No events yet.' : `${page.items.length} most recent events, newest first.`;
      } catch (err) {
        note.textContent = `The audit trail could not be read: ${err.message}`;
      }
    })();
    await inFlight;
    inFlight = null;
    if (again) { again = false; await refresh(); }
  }
  return { section, refresh };
}
