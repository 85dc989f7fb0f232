import { post, subscribe, enc } from '../api.js';
import { h, age, number, chip, isNewer } from '../format.js';

const GENERATION_STATUSES = ['queued', 'running', 'paused', 'completed', 'cancelled', 'failed'];
const BOT_STATUSES = ['active', 'inactive'];
const PAGE_SIZES = [25, 50, 100, 200];

export const sessionHref = (row) => (row.kind === 'bot' ? `/bots/${enc(row.id)}` : `/generations/${enc(row.id)}`);

/**
 * The sessions list: every generation and bot session the user may see, kept live by the server's sessions feed
 * (a snapshot, then each change). Filtering, search and paging run over the rows in memory and only the visible
 * page is drawn, so 10,000 sessions stay responsive. When several nodes share the store (or the rows name more than
 * one), a Node column shows which node holds each session (a row's `holder`; none when it is not held).
 */
export function mountList(root, { navigate }) {
  document.title = 'Sessions · Holdfast';
  const params = new URLSearchParams(location.search);
  const state = {
    kind: params.get('kind') ?? '',
    status: params.get('status') ?? '',
    q: params.get('q') ?? '',
    page: Math.max(1, Number(params.get('page')) || 1),
    size: PAGE_SIZES.includes(Number(params.get('size'))) ? Number(params.get('size')) : 50,
  };
  let rows = new Map(); // "kind:id" → row
  let pending = null; // snapshot being received
  let ready = false;
  let sorted = null; // cached, newest first
  let scheduled = null;
  let drawnAt = 0;
  let nodes = 1; // live nodes on the store, from the feed's 'ready'
  let nodeColumn = null; // whether the Node column is drawn

  // --- controls
  const kindSelect = h('select', { id: 'filter-kind' },
    h('option', { value: '' }, 'All kinds'),
    h('option', { value: 'generation' }, 'Generations'),
    h('option', { value: 'bot' }, 'Bots'));
  kindSelect.value = state.kind;
  const statusSelect = h('select', { id: 'filter-status' },
    h('option', { value: '' }, 'Any status'),
    h('optgroup', { label: 'Generations' }, GENERATION_STATUSES.map((s) => h('option', { value: s }, s))),
    h('optgroup', { label: 'Bots' }, BOT_STATUSES.map((s) => h('option', { value: s }, s))));
  statusSelect.value = state.status;
  const search = h('input', { id: 'filter-search', type: 'search', placeholder: 'gen_… or bot id', autocomplete: 'off', spellcheck: 'false' });
  search.value = state.q;
  const sizeSelect = h('select', { id: 'page-size' }, PAGE_SIZES.map((n) => h('option', { value: n }, String(n))));
  sizeSelect.value = String(state.size);

  const live = h('p', { class: 'live-state', role: 'status' }, 'Connecting…');
  const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const thead = h('thead');
  const table = h('table', { class: 'sessions' },
    h('caption', { class: 'visually-hidden' }, 'Sessions, newest first'),
    thead,
    tbody);
  const empty = h('p', { class: 'empty', hidden: true });
  const prev = h('button', { type: 'button', class: 'secondary' }, 'Previous page');
  const next = h('button', { type: 'button', class: 'secondary' }, 'Next page');
  const pageLabel = h('span', { class: 'page-label' });

  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter sessions' },
    h('div', { class: 'field' }, h('label', { for: 'filter-kind' }, 'Kind'), kindSelect),
    h('div', { class: 'field' }, h('label', { for: 'filter-status' }, 'Status'), statusSelect),
    h('div', { class: 'field grow' }, h('label', { for: 'filter-search' }, 'Search by id'), search),
    h('div', { class: 'field' }, h('label', { for: 'page-size' }, 'Rows per page'), sizeSelect));
  filters.addEventListener('submit', (e) => e.preventDefault());

  root.append(
    h('div', { class: 'title-row' }, h('h1', {}, 'Sessions'), live),
    startForms(navigate),
    filters,
    summary,
    h('div', { class: 'table-wrap' }, table),
    empty,
    h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, pageLabel, next));

  const update = (patch) => {
    Object.assign(state, patch);
    const p = new URLSearchParams();
    if (state.kind) p.set('kind', state.kind);
    if (state.status) p.set('status', state.status);
    if (state.q) p.set('q', state.q);
    if (state.page > 1) p.set('page', String(state.page));
    if (state.size !== 50) p.set('size', String(state.size));
    const query = p.toString();
    history.replaceState(null, '', query ? `/?${query}` : '/');
    draw();
  };
  kindSelect.addEventListener('change', () => update({ kind: kindSelect.value, page: 1 }));
  statusSelect.addEventListener('change', () => update({ status: statusSelect.value, page: 1 }));
  search.addEventListener('input', () => update({ q: search.value.trim(), page: 1 }));
  sizeSelect.addEventListener('change', () => update({ size: Number(sizeSelect.value), page: 1 }));
  prev.addEventListener('click', () => update({ page: Math.max(1, state.page - 1) }));
  next.addEventListener('click', () => update({ page: state.page + 1 }));

  // --- data
  const key = (r) => `${r.kind}:${r.id}`;
  const put = (map, row) => {
    const k = key(row);
    if (isNewer(map.get(k), row)) map.set(k, row);
  };
  const changed = () => {
    sorted = null;
    // At most one redraw per 100 ms, however many changes arrive; at once when the last one is older. Not tied to
    // animation frames, which a window in the background does not get: it stays current for when it is looked at.
    if (scheduled) return;
    const wait = 100 - (performance.now() - drawnAt);
    if (wait <= 0) draw();
    else scheduled = setTimeout(() => { scheduled = null; draw(); }, wait);
  };
  const feed = subscribe('/api/v1/dashboard/sessions/stream', {
    begin: () => { pending = new Map(); },
    snapshot: (d) => { for (const r of d.items) put(pending ?? rows, r); },
    ready: (d) => {
      nodes = d.nodes ?? 1;
      if (pending) { rows = pending; pending = null; }
      ready = true;
      changed();
    },
    upsert: (d) => { for (const r of d.items) put(rows, r); changed(); },
    remove: (d) => { for (const r of d.items) rows.delete(key(r)); changed(); },
  }, (s) => {
    live.textContent = s === 'live' ? 'Live' : s === 'signed-out' ? 'Signed out' : 'Reconnecting…';
    live.dataset.state = s;
  });

  // Ages tick without any traffic.
  const ticker = setInterval(() => { if (ready) draw(); }, 10_000);

  function visible() {
    if (!sorted) {
      sorted = [...rows.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? 1 : -1));
    }
    const q = state.q.toLowerCase();
    return sorted.filter((r) =>
      (!state.kind || r.kind === state.kind)
      && (!state.status || r.status === state.status)
      && (!q || r.id.toLowerCase().includes(q)));
  }

  /** True when the rows name two nodes or more (stops looking at the second). */
  function severalHolders() {
    let first = null;
    for (const r of rows.values()) {
      if (!r.holder) continue;
      if (first === null) first = r.holder;
      else if (r.holder !== first) return true;
    }
    return false;
  }

  function drawHead(withNode) {
    if (nodeColumn === withNode) return;
    nodeColumn = withNode;
    const titles = ['Session', 'Kind', 'Status', 'Owner', 'Model or bot type', ...(withNode ? ['Node'] : []), 'Age', 'Tokens'];
    thead.replaceChildren(h('tr', {}, titles.map((t) => h('th', { scope: 'col', class: t === 'Tokens' ? 'num' : null }, t))));
  }

  function draw() {
    drawnAt = performance.now();
    if (!ready) {
      drawHead(false);
      summary.textContent = 'Loading sessions…';
      return;
    }
    const withNode = nodes > 1 || severalHolders();
    drawHead(withNode);
    const matching = visible();
    const pages = Math.max(1, Math.ceil(matching.length / state.size));
    if (state.page > pages) state.page = pages;
    const start = (state.page - 1) * state.size;
    const page = matching.slice(start, start + state.size);
    const now = Date.now();
    tbody.replaceChildren(...page.map((r) => h('tr', { dataset: { kind: r.kind, id: r.id, status: r.status } },
      h('th', { scope: 'row', 'data-label': 'Session' }, h('a', { href: sessionHref(r), class: 'session-id' }, r.id)),
      h('td', { 'data-label': 'Kind' }, r.kind),
      h('td', { 'data-label': 'Status' }, chip(r.status), r.kind === 'generation' && r.desired_state && r.status === 'running' && r.desired_state !== 'running'
        ? h('span', { class: 'muted' }, ` (${r.desired_state === 'paused' ? 'pausing' : 'cancelling'})`) : null),
      h('td', { 'data-label': 'Owner' }, r.owner ?? '—'),
      h('td', { 'data-label': 'Model or bot type' }, r.kind === 'bot' ? r.bot_type : r.model),
      withNode ? h('td', { 'data-label': 'Node', class: 'node' }, r.holder ?? '—') : null,
      h('td', { 'data-label': 'Age' }, h('time', { datetime: r.created_at, title: new Date(r.created_at).toLocaleString() }, age(r.created_at, now))),
      h('td', { 'data-label': 'Tokens', class: 'num' }, r.kind === 'generation' ? number(r.output_tokens) : '—'))));
    const total = rows.size;
    summary.textContent = matching.length === 0
      ? `No session matches (${number(total)} in all).`
      : `Showing ${number(start + 1)}–${number(start + page.length)} of ${number(matching.length)} matching sessions (${number(total)} in all).`;
    empty.hidden = total !== 0;
    empty.textContent = total === 0 ? 'No sessions yet. Start a generation above, or with: holdfast gen start --model scripted "Hello"' : '';
    pageLabel.textContent = `Page ${number(state.page)} of ${number(pages)}`;
    prev.disabled = state.page <= 1;
    next.disabled = state.page >= pages;
  }

  draw();
  return {
    dispose() {
      feed.close();
      clearInterval(ticker);
      clearTimeout(scheduled);
    },
  };
}

function startForms(navigate) {
  const error = h('p', { class: 'error', role: 'alert' });
  const model = h('input', { id: 'new-model', name: 'model', required: true, autocomplete: 'off', value: 'scripted' });
  const prompt = h('textarea', { id: 'new-prompt', name: 'prompt', required: true, rows: 3 });
  const maxTokens = h('input', { id: 'new-max-tokens', name: 'max_tokens', type: 'number', min: 1, inputmode: 'numeric' });
  const start = h('button', { type: 'submit' }, 'Start generation');
  const genForm = h('form', { class: 'start-form' },
    h('div', { class: 'field' }, h('label', { for: 'new-model' }, 'Model'), model),
    h('div', { class: 'field grow' }, h('label', { for: 'new-prompt' }, 'Prompt'), prompt),
    h('div', { class: 'field' }, h('label', { for: 'new-max-tokens' }, 'Max tokens (optional)'), maxTokens),
    start);
  genForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!prompt.value.trim()) { error.textContent = 'Write a prompt.'; prompt.focus(); return; }
    start.disabled = true;
    try {
      const body = { model: model.value.trim(), input: prompt.value };
      if (maxTokens.value) body.parameters = { max_tokens: Number(maxTokens.value) };
      const created = await post('/api/v1/generations', body);
      navigate(`/generations/${enc(created.id)}`);
    } catch (err) {
      error.textContent = err.message;
    } finally {
      start.disabled = false;
    }
  });

  const botId = h('input', { id: 'new-bot-id', name: 'session_id', required: true, autocomplete: 'off', spellcheck: 'false' });
  const botType = h('select', { id: 'new-bot-type', name: 'bot_type' }, h('option', { value: 'web' }, 'web'), h('option', { value: 'bridge' }, 'bridge'));
  const startBot = h('button', { type: 'submit' }, 'Start bot');
  const botForm = h('form', { class: 'start-form' },
    h('div', { class: 'field grow' }, h('label', { for: 'new-bot-id' }, 'Bot session id'), botId),
    h('div', { class: 'field' }, h('label', { for: 'new-bot-type' }, 'Bot type'), botType),
    startBot);
  botForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!botId.value.trim()) { error.textContent = 'Give the bot session an id.'; botId.focus(); return; }
    startBot.disabled = true;
    try {
      const bot = await post('/api/v1/bots', { session_id: botId.value.trim(), bot_type: botType.value });
      navigate(`/bots/${enc(bot.session_id)}`);
    } catch (err) {
      error.textContent = err.message;
    } finally {
      startBot.disabled = false;
    }
  });

  return h('details', { class: 'card start' },
    h('summary', {}, 'Start a session'),
    h('h2', { class: 'small-heading' }, 'Generation'), genForm,
    h('h2', { class: 'small-heading' }, 'Bot'), botForm,
    error);
}
