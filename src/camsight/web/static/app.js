// The UI shell: who is signed in, the hash router (#/page?params), sign-in and password change.

import { api, fill, h, toast, errorBox, focusHeading } from './api.js';
import * as search from './search.js';
import * as events from './events.js';
import * as cameras from './cameras.js';
import * as upload from './upload.js';
import * as audit from './audit.js';
import * as users from './users.js';

const PAGES = { search, events, cameras, upload, audit, users };
// The page each role lands on: the first one it may use.
const ORDER = ['search', 'events', 'cameras', 'upload', 'audit', 'users'];

export const session = { user: null, permissions: new Set() };
export const can = (permission) => session.permissions.has(permission);

let cleanup = null;
// The one-time password just typed at sign-in, kept in memory only until the forced change that
// follows, so the user is not asked for it twice (the server still checks it).
let carried = null;
// Which render is current: a page that finishes loading after the user moved on must not take over.
let rendering = 0;

function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [name, query] = raw.split('?');
  return { name: name || '', params: new URLSearchParams(query || '') };
}

export function go(name, params) {
  const query = params ? new URLSearchParams(params).toString() : '';
  const target = `#/${name}${query ? `?${query}` : ''}`;
  if (location.hash === target) render();
  else location.hash = target;
}

function allowedPages() {
  return ORDER.filter((name) => {
    const link = document.querySelector(`nav a[data-page="${name}"]`);
    return link && can(link.dataset.perm);
  });
}

function showChrome() {
  const top = document.querySelector('header.top');
  top.hidden = !session.user;
  document.getElementById('who-name').textContent = session.user
    ? `${session.user.name} (${session.user.role})` : '';
  for (const link of document.querySelectorAll('nav a[data-page]')) {
    link.hidden = !can(link.dataset.perm);
  }
}

async function render() {
  const view = document.getElementById('view');
  const mine = ++rendering;
  if (cleanup) { try { cleanup(); } catch { /* a page's cleanup must not stop navigation */ } cleanup = null; }
  if (!session.user) return renderSignIn(view);
  if (session.user.must_change_password) return renderPasswordChange(view, true);
  const { name, params } = route();
  if (name === 'password') return renderPasswordChange(view, false);
  const pages = allowedPages();
  if (!pages.includes(name)) {
    if (pages.length) return go(pages[0]);
    view.replaceChildren(h('p', {}, 'Your account has no pages to show.'));
    return;
  }
  for (const link of document.querySelectorAll('nav a[data-page]')) {
    if (link.dataset.page === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // Each render draws into its own element: one still loading when the user moves on
  // draws into an element no longer shown, never into the next page.
  const page = h('div', { class: 'page' });
  view.replaceChildren(page);
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · camsight`;
  let done = null;
  try {
    done = (await PAGES[name].render(page, params, { can, go, session })) || null;
  } catch (err) {
    page.append(errorBox(err));
  }
  if (mine !== rendering) {
    // The user moved on while this page was loading: stop its timers too.
    if (done) { try { done(); } catch { /* see above */ } }
    return;
  }
  cleanup = done;
  // Someone already typing in the page (a slow search) keeps their focus.
  if (!page.contains(document.activeElement)) focusHeading(page);
}

function renderSignIn(view) {
  showChrome();
  document.title = 'Sign in · camsight';
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h('form', { class: 'card narrow', id: 'sign-in' },
    h('h1', {}, 'Sign in to camsight'),
    h('label', {}, 'User name', h('input', { name: 'name', autocomplete: 'username', required: true, maxlength: 128 })),
    h('label', {}, 'Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 1024 })),
    message,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    h('p', { class: 'muted small' },
      'camsight analyses clothing, carried items, posture and motion. It does not recognise faces ',
      'or estimate sex, age or ethnicity.'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    message.hidden = true;
    const data = new FormData(form);
    try {
      await api('/auth/login', { method: 'POST', body: { name: data.get('name'), password: data.get('password') } });
      await loadMe();
      carried = session.user && session.user.must_change_password ? data.get('password') : null;
      render();
    } catch (err) {
      message.textContent = err.message;
      message.hidden = false;
    }
  });
  view.replaceChildren(form);
  form.querySelector('input').focus();
}

function renderPasswordChange(view, forced) {
  showChrome();
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  // Right after signing in with a one-time password, that password is the current one: not asked again.
  const known = forced && carried !== null ? carried : null;
  const form = h('form', { class: 'card narrow', id: 'password-change' },
    h('h1', {}, forced ? 'Choose a new password' : 'Change password'),
    forced ? h('p', {}, 'This password was for one use only. Choose your own to go on.') : null,
    known === null ? h('label', {}, 'Current password', h('input', { name: 'current', type: 'password', autocomplete: 'current-password', required: true })) : null,
    h('label', {}, 'New password', h('input', { name: 'new', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 })),
    h('label', {}, 'New password again', h('input', { name: 'again', type: 'password', autocomplete: 'new-password', required: true })),
    message,
    h('button', { type: 'submit', class: 'primary' }, 'Save password'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    message.hidden = true;
    if (data.get('new') !== data.get('again')) {
      message.textContent = 'the two new passwords differ';
      message.hidden = false;
      return;
    }
    try {
      await api('/auth/password', { method: 'POST', body: { current: known ?? data.get('current'), new: data.get('new') } });
      carried = null;
      toast('Password changed');
      await loadMe();
      go('search');
    } catch (err) {
      message.textContent = err.message;
      message.hidden = false;
      // Refused as the current password: ask for it, as on any other visit.
      if (known !== null && err.code === 'wrong_password') {
        carried = null;
        renderPasswordChange(view, forced);
        fill(view.querySelector('[role=alert]'), err.message).hidden = false;
      }
    }
  });
  view.replaceChildren(form);
  focusHeading(view);
}

async function loadMe() {
  try {
    const me = await api('/auth/me');
    session.user = me.user;
    session.permissions = new Set(me.permissions || []);
  } catch (err) {
    if (err.status !== 401) toast(err.message, 'error');
    session.user = null;
    session.permissions = new Set();
  }
  showChrome();
}

async function signOut() {
  try { await api('/auth/logout', { method: 'POST' }); } catch { /* signed out either way */ }
  carried = null;
  session.user = null;
  session.permissions = new Set();
  location.hash = '';
  render();
}

window.addEventListener('hashchange', render);
window.addEventListener('camsight:signed-out', () => {
  if (!session.user) return;
  session.user = null;
  session.permissions = new Set();
  toast('Your session has ended; please sign in again', 'error');
  render();
});
document.getElementById('sign-out').addEventListener('click', signOut);
await loadMe();
render();
