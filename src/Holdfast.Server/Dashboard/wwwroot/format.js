// Small helpers for building the DOM and showing times and numbers.

/** h('p', {class: 'x'}, 'text', child) → element. Attributes starting with "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const numberFormat = new Intl.NumberFormat(undefined);
export const number = (n) => (n === undefined || n === null ? '—' : numberFormat.format(n));

export function age(iso, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.floor(hours / 24)} d`;
}

export const dateTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

/** A status chip: the status as text, coloured by class (never by colour alone). */
export const chip = (status) => h('span', { class: `chip chip-${status}` }, status);

/** Connection detail "state: reason" as [state, reason]. */
export function splitConnection(detail) {
  if (!detail) return ['not reported yet', null];
  const i = detail.indexOf(': ');
  return i < 0 ? [detail, null] : [detail.slice(0, i), detail.slice(i + 2)];
}

/** True when row b is newer than row a (rows of the live feed may arrive out of order around a snapshot). */
export function isNewer(a, b) {
  if (!a) return true;
  if (b.version !== a.version) return b.version > a.version;
  if ((b.output_tokens ?? 0) !== (a.output_tokens ?? 0)) return (b.output_tokens ?? 0) > (a.output_tokens ?? 0);
  return Date.parse(b.updated_at) >= Date.parse(a.updated_at);
}
