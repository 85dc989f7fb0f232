import { get, post, subscribe, enc, ApiError } from '../api.js';
import { h, number, dateTime, isNewer } from '../format.js';
import { auditSection } from './audit.js';

/**
 * One generation: its text as it streams (the session's SSE stream, resumed from the last seq after a reconnect or
 * a resume), its status as text, Pause/Resume/Cancel/Fork enabled as the state machine allows, token count, rate and
 * progress while it runs, the error and how to resume when it failed, and the audit trail.
 *
 * One live connection per window (browsers allow six per address over HTTP/1.1): while the session can still change,
 * its SSE stream brings text and status changes (a pause made in another window shows here within a fraction of a
 * second); once it has ended, the sessions feed for this one id watches for a resume or a delete instead.
 */
export function mountGeneration(root, { id, navigate }) {
  document.title = `${id} · Holdfast`;
  const path = `/api/v1/generations/${enc(id)}`;
  let row = null; // the session's state, in the sessions feed's row shape
  let text = '';
  let lastSeq = 0;
  let historySeq = 0; // chunks up to here were written before this page opened: not part of the rate
  let stream = null;
  let streamDone = false;
  let feed = null; // sessions feed for this id, open only while the text stream is not
  let statusSeq = 0; // seq of the last status event applied from the stream
  let drawQueued = false;
  const arrivals = []; // [time, tokens] of recent chunks, for the rate
  let disposed = false;

  const statusText = h('strong', { id: 'status', class: 'status-text' }, '…');
  const statusNote = h('span', { class: 'muted', id: 'status-note' });
  const buttons = {
    pause: h('button', { type: 'button', id: 'pause', disabled: true }, 'Pause'),
    resume: h('button', { type: 'button', id: 'resume', disabled: true }, 'Resume'),
    cancel: h('button', { type: 'button', id: 'cancel', class: 'danger', disabled: true }, 'Cancel'),
    fork: h('button', { type: 'button', id: 'fork', class: 'secondary', disabled: true }, 'Fork'),
  };
  const actionMessage = h('p', { class: 'action-message', role: 'status' });
  const tokens = h('dd', { id: 'tokens' }, '—');
  const rate = h('dd', { id: 'rate' }, '—');
  const progress = h('progress', { id: 'progress', max: 1, value: 0, 'aria-labelledby': 'progress-label' });
  const progressText = h('span', { id: 'progress-text', class: 'muted' });
  const progressRow = h('div', { class: 'progress-row', hidden: true }, h('span', { id: 'progress-label' }, 'Progress'), progress, progressText);
  const failure = h('div', { class: 'failure', role: 'alert', hidden: true });
  const output = h('pre', { id: 'output', class: 'output', tabindex: '0', 'aria-label': 'Output text' });
  const live = h('span', { class: 'live-state', role: 'status' }, 'Connecting…');
  const details = h('dl', { class: 'details' });
  const input = h('div', { class: 'input-messages' });
  const audit = auditSection(path);

  root.append(
    h('p', { class: 'breadcrumb' }, h('a', { href: '/' }, '← All sessions')),
    h('div', { class: 'title-row' }, h('h1', {}, 'Generation ', h('span', { class: 'session-id' }, id)), live),
    h('section', { class: 'card state', 'aria-label': 'State and controls' },
      h('p', { class: 'status-line' }, 'Status: ', statusText, ' ', statusNote),
      h('div', { class: 'controls', role: 'group', 'aria-label': 'Controls' }, buttons.pause, buttons.resume, buttons.cancel, buttons.fork),
      actionMessage,
      failure,
      h('dl', { class: 'metrics' }, h('div', {}, h('dt', {}, 'Tokens'), tokens), h('div', {}, h('dt', {}, 'Rate'), rate)),
      progressRow),
    h('section', { class: 'card', 'aria-labelledby': 'output-heading' }, h('h2', { id: 'output-heading' }, 'Output'), output),
    h('section', { class: 'card', 'aria-labelledby': 'input-heading' }, h('h2', { id: 'input-heading' }, 'Request'), details, input),
    audit.section);

  // --- controls
  const control = async (name, button, done) => {
    actionMessage.textContent = '';
    button.disabled = true;
    try {
      const result = name === 'fork' ? await post(`${path}/fork`, {}) : await post(`${path}/${name}`, {});
      if (done) done(result);
      else {
        // The answer may be older than a status event the stream already brought (a pause answers "running,
        // desired paused" while the runner stops): only a record that has seen that event replaces the state.
        if (result.last_seq >= statusSeq) apply([fromGeneration(result)]);
        actionMessage.textContent = `${button.textContent} requested.`;
      }
    } catch (err) {
      actionMessage.textContent = err.message;
    } finally {
      drawState();
    }
  };
  buttons.pause.addEventListener('click', () => control('pause', buttons.pause));
  buttons.resume.addEventListener('click', () => control('resume', buttons.resume));
  buttons.cancel.addEventListener('click', () => control('cancel', buttons.cancel));
  buttons.fork.addEventListener('click', () => control('fork', buttons.fork, (fork) => navigate(`/generations/${enc(fork.id)}`)));

  // --- state
  function drawState() {
    if (!row) return;
    const { status, desired_state: desired } = row;
    statusText.textContent = status;
    statusText.dataset.status = status;
    let note = '';
    if (status === 'running' && desired === 'paused') note = '(pausing…)';
    else if (status === 'running' && desired === 'cancelled') note = '(cancelling…)';
    else if (status === 'paused' && row.pause_reason) note = `(reason: ${row.pause_reason})`;
    else if (status === 'completed' && row.finish_reason) note = `(finish reason: ${row.finish_reason})`;
    statusNote.textContent = note;
    const running = status === 'running';
    buttons.pause.disabled = !(status === 'queued' || (running && desired === 'running'));
    buttons.resume.disabled = !(status === 'paused' || status === 'failed' || (running && desired === 'paused'));
    buttons.cancel.disabled = !(status === 'queued' || status === 'paused' || status === 'failed' || (running && desired !== 'cancelled'));
    buttons.fork.disabled = false;
    tokens.textContent = number(Math.max(row.output_tokens ?? 0, arrivalsTotal));
    if (row.max_tokens) {
      progressRow.hidden = false;
      const n = Math.min(row.max_tokens, Math.max(row.output_tokens ?? 0, arrivalsTotal));
      progress.max = row.max_tokens;
      progress.value = n;
      progressText.textContent = `${number(n)} of ${number(row.max_tokens)} tokens`;
    } else {
      progressRow.hidden = true;
    }
    if (status === 'failed') {
      failure.hidden = false;
      failure.replaceChildren(
        h('h3', {}, 'This generation failed'),
        h('p', { class: 'error-text' }, row.error ?? 'The backend failed.'),
        h('p', {}, 'Its output so far is kept. Press Resume to continue the text from where it stopped (after fixing the cause, if the message names one), or Cancel to end it for good.'));
    } else {
      failure.hidden = true;
      failure.replaceChildren();
    }
    if ((status === 'queued' || status === 'running' || status === 'paused') && streamDone) openStream();
  }

  let arrivalsTotal = 0;
  function drawRate() {
    const now = performance.now();
    while (arrivals.length && now - arrivals[0][0] > 5000) arrivals.shift();
    if (!row || row.status !== 'running' || arrivals.length < 2) {
      rate.textContent = row?.status === 'running' ? 'measuring…' : '—';
      return;
    }
    const span = (now - arrivals[0][0]) / 1000;
    const count = arrivals.reduce((n, a) => n + a[1], 0);
    rate.textContent = span > 0 ? `${(count / Math.max(span, 1)).toFixed(1)} tokens/s` : '—';
  }
  const rateTimer = setInterval(drawRate, 1000);

  function drawText() {
    if (drawQueued) return;
    drawQueued = true;
    // A timer, not an animation frame: a window in the background keeps its text current too.
    setTimeout(() => {
      drawQueued = false;
      const atBottom = output.scrollHeight - output.scrollTop - output.clientHeight < 40;
      output.textContent = text;
      if (atBottom) output.scrollTop = output.scrollHeight;
      tokens.textContent = number(Math.max(row?.output_tokens ?? 0, arrivalsTotal));
    }, 50);
  }

  function openStream() {
    feed?.close();
    feed = null;
    stream?.close();
    streamDone = false;
    stream = subscribe(`${path}/stream?after=${lastSeq}`, {
      chunk: (d) => {
        if (d.seq <= lastSeq) return;
        lastSeq = d.seq;
        text += d.text;
        arrivalsTotal += 1;
        if (d.seq > historySeq) arrivals.push([performance.now(), 1]);
        drawText();
      },
      status: (d) => {
        lastSeq = Math.max(lastSeq, d.seq);
        statusSeq = Math.max(statusSeq, d.seq);
        if (!row) return;
        const desired = d.status === 'paused' ? 'paused' : d.status === 'cancelled' ? 'cancelled' : d.status === 'queued' || d.status === 'running' ? 'running' : row.desired_state;
        row = {
          ...row,
          status: d.status,
          desired_state: desired,
          pause_reason: d.status === 'paused' ? d.reason ?? row.pause_reason : null,
          finish_reason: d.status === 'completed' ? d.reason ?? row.finish_reason : row.finish_reason,
          error: d.error ?? row.error,
          output_tokens: Math.max(row.output_tokens ?? 0, arrivalsTotal),
        };
        drawState();
        drawRate();
        audit.refresh();
      },
      done: () => {
        streamDone = true;
        stream?.close();
        stream = null;
        watchEnded();
      },
    }, (s) => showLive(s));
  }

  /** After the end: only a resume (of a failed session) or a delete can change it; the sessions feed tells. */
  function watchEnded() {
    feed = subscribe(`/api/v1/dashboard/sessions/stream?kind=generation&id=${enc(id)}`, {
      snapshot: (d) => apply(d.items),
      upsert: (d) => apply(d.items),
      remove: () => {
        row = null;
        statusText.textContent = 'deleted';
        Object.values(buttons).forEach((b) => { b.disabled = true; });
      },
    }, (s) => showLive(s));
  }

  function showLive(s) {
    live.textContent = s === 'live' ? 'Live' : s === 'signed-out' ? 'Signed out' : 'Reconnecting…';
    live.dataset.state = s;
  }

  function apply(items) {
    for (const r of items) {
      if (r.id !== id || !isNewer(row, r)) continue;
      const statusChanged = row?.status !== r.status || row?.desired_state !== r.desired_state;
      row = r;
      if (statusChanged) audit.refresh();
    }
    drawState();
    drawRate();
  }

  function fromGeneration(g) {
    return {
      kind: 'generation',
      id: g.id,
      status: g.status,
      owner: g.owner,
      created_at: g.created_at,
      updated_at: g.updated_at,
      version: g.version,
      model: g.model,
      desired_state: g.desired_state,
      pause_reason: g.pause_reason,
      error: g.error,
      output_tokens: g.usage?.output_tokens ?? 0,
      max_tokens: g.parameters?.max_tokens ?? null,
      finish_reason: g.finish_reason,
      forked_from: g.forked_from,
    };
  }

  (async () => {
    try {
      const g = await get(path);
      if (disposed) return;
      historySeq = g.last_seq;
      apply([fromGeneration(g)]);
      details.replaceChildren(...[
        h('dt', {}, 'Model'), h('dd', {}, g.model),
        h('dt', {}, 'Backend'), h('dd', {}, g.backend),
        h('dt', {}, 'Owner'), h('dd', {}, g.owner),
        h('dt', {}, 'Created'), h('dd', {}, h('time', { datetime: g.created_at }, dateTime(g.created_at))),
        g.forked_from ? [h('dt', {}, 'Forked from'), h('dd', {}, h('a', { href: `/generations/${enc(g.forked_from)}` }, g.forked_from), ` at seq ${g.forked_at_seq}`)] : null,
        g.previous_session_id ? [h('dt', {}, 'Follows'), h('dd', {}, h('a', { href: `/generations/${enc(g.previous_session_id)}` }, g.previous_session_id))] : null,
      ].flat().filter(Boolean));
      input.replaceChildren(...g.input.map((m) => h('div', { class: 'message' }, h('span', { class: 'role' }, m.role), h('p', {}, m.content))));
      openStream();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        root.replaceChildren(
          h('p', { class: 'breadcrumb' }, h('a', { href: '/' }, '← All sessions')),
          h('h1', {}, 'Generation not found'),
          h('p', {}, `There is no generation ${id} that you can see.`));
      } else {
        actionMessage.textContent = err.message;
      }
    }
  })();

  audit.refresh();
  return {
    dispose() {
      disposed = true;
      feed?.close();
      stream?.close();
      clearInterval(rateTimer);
    },
  };
}
