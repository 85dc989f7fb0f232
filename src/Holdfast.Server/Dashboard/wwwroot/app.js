// The Holdfast dashboard: a small router over four views, each with its own address that opens directly:
//   /                  sessions list (generations and bots, live)
//   /signin            sign-in form (also redeems a one-time login link: /signin#token=…)
//   /generations/{id}  one generation: streaming text, controls, audit trail
//   /bots/{id}         one bot: QR code, connection, last message, end
import { get, post, onSignedOut } from './api.js';
import { mountSignIn } from './views/signin.js';
import { mountList } from './views/list.js';
import { mountGeneration } from './views/generation.js';
import { mountBot } from './views/bot.js';

const main = document.getElementById('main');
const account = document.getElementById('account');
const who = document.getElementById('who');
const signOutButton = document.getElementById('sign-out');

// Other windows of this browser hear about sign-in and sign-out at once.
const channel = 'BroadcastChannel' in window ? new BroadcastChannel('holdfast-dashboard') : null;

let user = null;
let current = null; // { dispose() } of the mounted view

function route(path) {
  let m;
  if (path === '/' || path === '') return { view: 'list' };
  if (path === '/signin') return { view: 'signin' };
  if ((m = path.match(/^\/generations\/([^/]+)$/))) return { view: 'generation', id: decodeURIComponent(m[1]) };
  if ((m = path.match(/^\/bots\/([^/]+)$/))) return { view: 'bot', id: decodeURIComponent(m[1]) };
  return { view: 'missing' };
}

export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  render();
}

function setUser(value) {
  user = value;
  account.hidden = !user;
  who.textContent = user ? `Signed in as ${user.user}${user.admin ? ' (admin)' : ''}` : '';
}

async function render({ focus = true } = {}) {
  current?.dispose?.();
  current = null;
  main.replaceChildren();
  const target = route(location.pathname);
  if (!user && target.view !== 'signin') {
    current = mountSignIn(main, { onSignedIn, next: location.pathname + location.search });
  } else if (target.view === 'signin') {
    current = mountSignIn(main, { onSignedIn, next: '/' });
  } else if (target.view === 'list') {
    current = mountList(main, { user, navigate });
  } else if (target.view === 'generation') {
    current = mountGeneration(main, { id: target.id, user, navigate });
  } else if (target.view === 'bot') {
    current = mountBot(main, { id: target.id, user, navigate });
  } else {
    const h1 = document.createElement('h1');
    h1.textContent = 'Page not found';
    const p = document.createElement('p');
    p.innerHTML = 'There is nothing here. <a href="/">All sessions</a>';
    main.append(h1, p);
    document.title = 'Not found · Holdfast';
  }
  if (focus) {
    // Screen readers and keyboards start at the new view's heading.
    const heading = main.querySelector('h1');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  }
}

async function onSignedIn(me, next) {
  setUser(me);
  channel?.postMessage({ type: 'signed-in' });
  navigate(next && next !== '/signin' ? next : '/', { replace: true });
}

async function signOut() {
  try { await post('/api/v1/dashboard/sign-out'); } catch { /* signed out either way */ }
  channel?.postMessage({ type: 'signed-out' });
  setUser(null);
  navigate('/signin');
}

signOutButton.addEventListener('click', signOut);

onSignedOut(() => {
  if (!user) return;
  setUser(null);
  render();
});

channel?.addEventListener('message', async (e) => {
  if (e.data?.type === 'signed-out' && user) {
    setUser(null);
    render();
  } else if (e.data?.type === 'signed-in' && !user) {
    await start();
  }
});

// Same-origin links are handled here, so a click does not reload the page; modified clicks open new windows.
document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[href]');
  if (!a || a.target || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/dashboard/')) return;
  if (url.hash && url.pathname === location.pathname) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => render());

async function start() {
  // A one-time login link: /signin#token=… (the token never reaches the server in a URL or a log).
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (token) {
    history.replaceState(null, '', location.pathname);
    try {
      const me = await post('/api/v1/dashboard/sign-in', { login_token: token });
      await onSignedIn(me, '/');
      return;
    } catch (e) {
      setUser(null);
      await render();
      const alert = document.getElementById('sign-in-error');
      if (alert) alert.textContent = e.message;
      return;
    }
  }
  try {
    setUser(await get('/api/v1/dashboard/me'));
  } catch {
    setUser(null);
  }
  if (user && location.pathname === '/signin') {
    navigate('/', { replace: true });
    return;
  }
  await render({ focus: false });
}

start();
