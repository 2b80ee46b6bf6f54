// Audit page (admins): the log, its chain check, and a CSV export.

import { API, api, h, errorBox, localTime, plural } from './api.js';

const PAGE = 100;
const COLUMNS = ['When', 'Who', 'Action', 'Target', 'Detail', 'From'];

// One value of an entry's detail as words: lists joined by commas, nested fields as "name value".
function valueText(value) {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (Array.isArray(value)) return value.length ? value.map(valueText).join(', ') : 'none';
  // Times are stored in UTC (ISO 8601): shown in the reader's own time, like the When column.
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value)) return localTime(value);
  if (typeof value === 'object') {
    return Object.entries(value).map(([k, v]) => `${k.replace(/_/g, ' ')} ${valueText(v)}`).join(', ') || 'none';
  }
  return String(value);
}

// The detail as "key: value" lines a person reads, not the JSON the server stores.
function detailLines(detail) {
  if (!detail || typeof detail !== 'object') return detail ? [String(detail)] : [];
  return Object.entries(detail).map(([key, value]) => h('div', {},
    h('span', { class: 'detail-key' }, `${key.replace(/_/g, ' ')}: `), valueText(value)));
}

// A cell that names its column, so a phone can stack each entry as a card.
const cell = (column, attrs, ...children) => h('td', { ...attrs, 'data-label': column }, ...children);

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
    table.replaceChildren(h('table', { class: 'stack' },
      h('caption', { class: 'muted small' }, `${plural(page.total, 'entry', 'entries')}, newest first`),
      h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, page.items.map((e) => h('tr', {},
        cell('When', {}, localTime(e.at)), cell('Who', {}, e.actor), cell('Action', {}, e.action),
        cell('Target', {}, e.target || ''),
        cell('Detail', { class: 'detail' }, detailLines(e.detail)),
        cell('From', {}, e.ip || ''))))),
    h('div', { class: 'pager' },
      offset > 0 ? h('a', { href: `#/audit?offset=${Math.max(0, offset - PAGE)}` }, '← Newer') : null,
      offset + PAGE < page.total ? h('a', { href: `#/audit?offset=${offset + PAGE}` }, 'Older →') : null));
  } catch (err) {
    table.replaceChildren(errorBox(err));
  }
  return null;
}
