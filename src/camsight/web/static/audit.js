// Audit page (admins): the log, its chain check, and a CSV export.

import { API, api, h, errorBox, localTime } from './api.js';

const PAGE = 100;

export async function render(view, params) {
  const offset = Math.max(0, Number(params.get('offset')) || 0);
  const verdict = h('p', { id: 'audit-verify', role: 'status' });
  const verify = h('button', {
    type: 'button',
    onclick: async () => {
      verdict.textContent = 'Checking…';
      try {
        const result = await api('/audit/verify');
        verdict.className = result.ok ? 'ok' : 'error';
        verdict.textContent = result.message || (result.ok ? 'The chain is intact' : 'The chain is broken');
      } catch (err) { verdict.replaceChildren(errorBox(err)); }
    },
  }, 'Verify the chain');
  const table = h('div', { class: 'table-wrap' });
  view.append(h('h1', {}, 'Audit log'),
    h('div', { class: 'actions' }, verify, h('a', { class: 'button', href: `${API}/audit.csv`, download: 'camsight-audit.csv' }, 'Export CSV')),
    verdict, table);
  try {
    const page = await api('/audit', { query: { limit: PAGE, offset } });
    table.replaceChildren(h('table', {},
      h('caption', { class: 'muted small' }, `${page.total} entries, newest first`),
      h('thead', {}, h('tr', {}, ['When', 'Who', 'Action', 'Target', 'Detail', 'From'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, page.items.map((e) => h('tr', {},
        h('td', {}, localTime(e.at)), h('td', {}, e.actor), h('td', {}, e.action), h('td', {}, e.target || ''),
        h('td', { class: 'detail' }, e.detail && Object.keys(e.detail).length ? JSON.stringify(e.detail) : ''),
        h('td', {}, e.ip || ''))))),
    h('div', { class: 'pager' },
      offset > 0 ? h('a', { href: `#/audit?offset=${Math.max(0, offset - PAGE)}` }, '← Newer') : null,
      offset + PAGE < page.total ? h('a', { href: `#/audit?offset=${offset + PAGE}` }, 'Older →') : null));
  } catch (err) {
    table.replaceChildren(errorBox(err));
  }
  return null;
}
