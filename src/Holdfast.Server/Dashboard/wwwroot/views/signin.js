import { post } from '../api.js';
import { h } from '../format.js';

export function mountSignIn(root, { onSignedIn, next }) {
  document.title = 'Sign in · Holdfast';
  const error = h('p', { id: 'sign-in-error', class: 'error', role: 'alert' });
  const input = h('input', {
    id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'current-password', required: true,
    spellcheck: 'false', 'aria-describedby': 'api-key-help',
  });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card sign-in', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'api-key' }, 'API key'),
      input,
      h('p', { id: 'api-key-help', class: 'help' },
        'Create one with ', h('code', {}, 'holdfast keys create --user NAME'),
        '. On this machine, ', h('code', {}, 'holdfast dashboard'), ' prints a one-time login link instead.')),
    button,
    error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const key = input.value.trim();
    if (!key) {
      error.textContent = 'Enter your API key.';
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      const me = await post('/api/v1/dashboard/sign-in', { api_key: key });
      input.value = '';
      await onSignedIn(me, next);
    } catch (err) {
      error.textContent = err.message;
      input.focus();
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  root.append(
    h('h1', {}, 'Sign in to Holdfast'),
    h('p', { class: 'lead' }, 'See and steer your generation and bot sessions live. The sign-in lasts for this browser profile; every window of it is signed in.'),
    form);
  return { dispose() {} };
}
