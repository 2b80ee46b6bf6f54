// Users page (admins): add users, set role and cameras, reset passwords (a one-time password shown
// once), disable, enable and delete; list and revoke each user's API tokens. The server audits it all.

import { api, fill, h, toast, errorBox, localTime } from './api.js';

const ROLES = {
  admin: 'Admin: everything, every camera',
  operator: 'Operator: search, clips, export, events, live view',
  viewer: 'Viewer: live view and events',
};
const path = (name) => `/users/${encodeURIComponent(name)}`;

function stateOf(user) {
  if (user.disabled) return ['disabled', 'disabled'];
  if (user.must_change_password) return ['must-change', 'must change password'];
  return ['active', 'active'];
}

// Role and camera fields, shared by the add form and each user's edit form. Admins see every
// camera, so the camera choice is hidden for them; "every camera" also covers cameras added later.
function accessFields(cameraNames, user) {
  // The least access is the default for a new user (an attribute, so a form reset keeps it).
  const role = h('select', { name: 'role', 'aria-label': 'Role' },
    Object.entries(ROLES).map(([value, text]) => h('option', { value, selected: user ? user.role === value : value === 'viewer' }, text)));
  const every = h('input', { type: 'checkbox', name: 'all-cameras', checked: !user || user.cameras === null });
  const boxes = cameraNames.map((name) => h('input', {
    type: 'checkbox', name: 'camera', value: name, checked: !!(user && user.cameras && user.cameras.includes(name)),
  }));
  const list = h('div', { class: 'camera-choice' },
    boxes.map((box) => h('label', { class: 'check' }, box, box.value)),
    cameraNames.length ? null : h('span', { class: 'muted small' }, 'No cameras yet.'));
  const fieldset = h('fieldset', { class: 'cameras-field' },
    h('legend', {}, 'Cameras'),
    h('label', { class: 'check' }, every, 'Every camera'),
    list);
  const sync = () => {
    fieldset.hidden = role.value === 'admin';
    list.hidden = every.checked;
  };
  role.addEventListener('change', sync);
  every.addEventListener('change', sync);
  sync();
  // What the API takes: null = every camera (and always for admins).
  const cameras = () => (role.value === 'admin' || every.checked ? null : boxes.filter((b) => b.checked).map((b) => b.value));
  return { nodes: [h('label', {}, 'Role', role), fieldset], role, cameras, sync };
}

// The password the server made, shown once with a copy button; gone when the page is left.
function showSecret(box, name, password, why) {
  const code = h('code', { class: 'secret', id: 'one-time-password' }, password);
  const copy = h('button', {
    type: 'button',
    onclick: async () => {
      try { await navigator.clipboard.writeText(password); toast('Copied'); } catch { toast('Select the password and copy it', 'error'); }
    },
  }, 'Copy');
  fill(box,
    h('p', {}, `${why} One-time password for `, h('strong', {}, name), ':'),
    h('p', { class: 'secret-line' }, code, ' ', copy),
    h('p', { class: 'muted small' }, 'It is shown only now. Give it to them privately: they must choose their own password when they first sign in with it.'),
    h('button', { type: 'button', class: 'link', onclick: () => { box.replaceChildren(); box.hidden = true; } }, 'Done'));
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest' });
}

function addUserForm(cameraNames, secretBox, reload) {
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const access = accessFields(cameraNames, null);
  const form = h('form', { class: 'card add-user', id: 'add-user' },
    h('h2', {}, 'Add a user'),
    h('label', {}, 'User name', h('input', { name: 'name', required: true, maxlength: 64, autocomplete: 'off', pattern: '[A-Za-z0-9][A-Za-z0-9._@\\-]*', placeholder: 'alice' })),
    access.nodes,
    h('p', { class: 'muted small' }, 'camsight makes a one-time password; the new user chooses their own at the first sign-in.'),
    message,
    h('button', { type: 'submit', class: 'primary' }, 'Add user'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    message.hidden = true;
    const name = new FormData(form).get('name').trim();
    try {
      const made = await api('/users', { method: 'POST', body: { name, role: access.role.value, cameras: access.cameras() } });
      form.reset();
      access.sync();
      await reload();
      showSecret(secretBox, made.name, made.one_time_password, `User ${made.name} added.`);
    } catch (err) {
      message.textContent = err.message;
      message.hidden = false;
    }
  });
  return form;
}

async function loadTokens(box, user) {
  fill(box, h('p', { class: 'muted small' }, 'Loading…'));
  let page;
  try {
    page = await api('/tokens', { query: { user: user.name, limit: 500 } });
  } catch (err) {
    fill(box, errorBox(err));
    return;
  }
  const revoke = async (token, button) => {
    if (!window.confirm(`Revoke API token “${token.name}” (${token.display}) of ${user.name}? Whatever uses it stops working.`)) return;
    button.disabled = true;
    try {
      await api(`/tokens/${token.id}`, { method: 'DELETE' });
      toast(`Token ${token.name} revoked`);
    } catch (err) { toast(err.message, 'error'); }
    loadTokens(box, user);
  };
  const revokeAll = async (button) => {
    if (!window.confirm(`Revoke every API token of ${user.name}?`)) return;
    button.disabled = true;
    try {
      const done = await api(`${path(user.name)}/tokens`, { method: 'DELETE' });
      toast(`${done.count} ${done.count === 1 ? 'token' : 'tokens'} revoked`);
    } catch (err) { toast(err.message, 'error'); }
    loadTokens(box, user);
  };
  fill(box,
    h('h3', {}, `API tokens of ${user.name}`),
    page.items.length ? h('ul', { class: 'token-list' }, page.items.map((t) => h('li', { dataset: { token: String(t.id) } },
      h('span', {}, h('strong', {}, t.name), ' ', h('code', {}, t.display)),
      h('span', { class: 'muted small' },
        `created ${localTime(t.created_at)}`,
        t.expires_at ? ` · expires ${localTime(t.expires_at)}` : '',
        ` · ${t.last_used_at ? `last used ${localTime(t.last_used_at)}` : 'never used'}`),
      h('button', { type: 'button', class: 'danger revoke-token', onclick: (e) => revoke(t, e.currentTarget) }, 'Revoke'))))
      : h('p', { class: 'muted small' }, 'No active API tokens.'),
    page.items.length > 1 ? h('button', { type: 'button', class: 'danger revoke-all', onclick: (e) => revokeAll(e.currentTarget) }, 'Revoke all') : null);
}

function editForm(user, cameraNames, panel, reload) {
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const access = accessFields(cameraNames, user);
  const form = h('form', { class: 'edit-user-form' },
    access.nodes,
    message,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Save'),
      h('button', { type: 'button', onclick: () => { panel.replaceChildren(); panel.hidden = true; } }, 'Cancel')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    message.hidden = true;
    try {
      await api(path(user.name), { method: 'PATCH', body: { role: access.role.value, cameras: access.cameras() } });
      toast(`${user.name} saved`);
      reload();
    } catch (err) {
      message.textContent = err.message;
      message.hidden = false;
    }
  });
  return form;
}

function userCard(user, ctx, cameraNames, secretBox, reload) {
  const self = ctx.session.user && ctx.session.user.name === user.name;
  const [stateClass, stateText] = stateOf(user);
  const panel = h('div', { class: 'user-panel', hidden: true });
  const open = (content) => { fill(panel, content); panel.hidden = false; };
  const act = async (what, request) => {
    try {
      await request();
      toast(what);
      reload();
    } catch (err) { toast(err.message, 'error'); }
  };
  return h('li', { class: `user-card card ${stateClass}`, dataset: { user: user.name } },
    h('div', { class: 'user-head' },
      h('strong', { class: 'user-name' }, user.name, self ? h('span', { class: 'muted small' }, ' (you)') : null),
      h('span', { class: `badge role role-${user.role}` }, user.role),
      h('span', { class: `badge user-state state-${stateClass}` }, stateText)),
    h('p', { class: 'small user-cameras' }, user.role === 'admin' || user.cameras === null ? 'Every camera'
      : user.cameras.length ? `Cameras: ${user.cameras.join(', ')}` : 'No cameras'),
    h('p', { class: 'muted small' }, user.last_login_at ? `Last sign-in ${localTime(user.last_login_at)}` : 'Never signed in'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'edit-user', onclick: () => open(editForm(user, cameraNames, panel, reload)) }, 'Role and cameras'),
      h('button', { type: 'button', class: 'show-tokens', onclick: () => { panel.hidden = false; loadTokens(panel, user); } }, 'API tokens'),
      self ? null : h('button', {
        type: 'button', class: 'reset-password',
        onclick: async () => {
          if (!window.confirm(`Give ${user.name} a new one-time password? Their current password and browser sessions stop working.`)) return;
          try {
            const done = await api(`${path(user.name)}/password-reset`, { method: 'POST' });
            reload();
            showSecret(secretBox, user.name, done.password, `Password of ${user.name} reset.`);
          } catch (err) { toast(err.message, 'error'); }
        },
      }, 'Reset password'),
      self ? null : h('button', {
        type: 'button', class: 'toggle-disabled',
        onclick: () => {
          if (!user.disabled && !window.confirm(`Disable ${user.name}? They are signed out at once and their API tokens stop working.`)) return;
          act(user.disabled ? `${user.name} enabled` : `${user.name} disabled`,
            () => api(path(user.name), { method: 'PATCH', body: { disabled: !user.disabled } }));
        },
      }, user.disabled ? 'Enable' : 'Disable'),
      self ? null : h('button', {
        type: 'button', class: 'danger delete-user',
        onclick: () => {
          if (!window.confirm(`Delete ${user.name} with their API tokens? Their entries in the audit log are kept.`)) return;
          act(`${user.name} deleted`, () => api(path(user.name), { method: 'DELETE' }));
        },
      }, 'Delete')),
    panel);
}

export async function render(view, params, ctx) {
  const secretBox = h('div', { class: 'card secret-box', role: 'status', hidden: true });
  const list = h('ul', { class: 'user-list', 'aria-label': 'Users' });
  view.append(h('h1', {}, 'Users'),
    h('p', { class: 'muted small' }, 'Who may sign in, with which role and cameras. Every change here is written to the audit log.'),
    secretBox, list);
  let cameraNames = [];
  try {
    cameraNames = (await api('/cameras', { query: { limit: 500 } })).items.map((c) => c.name);
  } catch (err) {
    view.append(errorBox(err));
  }
  const reload = async () => {
    try {
      const page = await api('/users', { query: { limit: 500 } });
      list.replaceChildren(...page.items.map((u) => userCard(u, ctx, cameraNames, secretBox, reload)));
    } catch (err) {
      list.replaceChildren(errorBox(err));
    }
  };
  await reload();
  view.append(addUserForm(cameraNames, secretBox, reload));
  // The one-time password must not stay on screen once the admin moves on.
  return () => secretBox.replaceChildren();
}
