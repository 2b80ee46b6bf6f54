// Events page: filters, a timeline per camera, and the list with snapshot, clip and acknowledge;
// legal holds (footage kept until released): placed from an event's card, listed and released below.

import { api, fill, h, toast, errorBox, localTime, plural, seconds } from './api.js';
import { openPlayer } from './player.js';

export const EVENT_TYPES = [
  'zone_intrusion', 'line_crossing', 'dwell', 'crowd', 'fall', 'running', 'wrong_way',
  'erratic_driving', 'stopped_vehicle', 'tampering', 'unusual_activity',
];
const SINCE = { '': 'any time', '1h': 'last hour', '24h': 'last 24 hours', '7d': 'last 7 days' };
const PAGE = 50;
const REFRESH_MS = 5000;

const label = (type) => type.replace(/_/g, ' ');

function sinceIso(value) {
  const match = /^(\d+)([hd])$/.exec(value || '');
  if (!match) return null;
  const ms = Number(match[1]) * (match[2] === 'h' ? 3600e3 : 86400e3);
  return new Date(Date.now() - ms).toISOString();
}

const startOf = (e) => (e.start ? new Date(e.start).getTime() : null);
const endOf = (e) => (e.end ? new Date(e.end).getTime() : Date.now());

// One row per camera, one mark per event, over the span of the events shown.
function timeline(items, onPick) {
  const timed = items.filter((e) => startOf(e) !== null);
  if (!timed.length) return null;
  const t0 = Math.min(...timed.map(startOf));
  const t1 = Math.max(...timed.map(endOf), t0 + 60e3);
  const cams = [...new Set(timed.map((e) => e.camera))].sort();
  const ns = 'http://www.w3.org/2000/svg';
  const rowH = 22;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 1000 ${cams.length * rowH + 18}`);
  svg.setAttribute('class', 'timeline');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `Timeline of ${plural(timed.length, 'event')} from ${localTime(new Date(t0).toISOString())}`);
  const x = (t) => 110 + ((t - t0) / (t1 - t0)) * 880;
  cams.forEach((cam, row) => {
    const text = document.createElementNS(ns, 'text');
    text.setAttribute('x', 4);
    text.setAttribute('y', row * rowH + 15);
    text.textContent = cam.length > 14 ? `${cam.slice(0, 13)}…` : cam;
    svg.append(text);
  });
  for (const e of timed) {
    const mark = document.createElementNS(ns, 'rect');
    const left = x(startOf(e));
    mark.setAttribute('x', left);
    mark.setAttribute('y', cams.indexOf(e.camera) * rowH + 4);
    mark.setAttribute('width', Math.max(4, x(endOf(e)) - left));
    mark.setAttribute('height', rowH - 8);
    mark.setAttribute('class', `sev-${e.severity}${e.acknowledged_at ? ' acked' : ''}`);
    const tip = document.createElementNS(ns, 'title');
    tip.textContent = `${label(e.type)} · ${e.camera} · ${localTime(e.start)}`;
    mark.append(tip);
    mark.addEventListener('click', () => onPick(e.id));
    svg.append(mark);
  }
  const axis = document.createElementNS(ns, 'text');
  axis.setAttribute('x', 110);
  axis.setAttribute('y', cams.length * rowH + 14);
  axis.setAttribute('class', 'axis');
  axis.textContent = `${localTime(new Date(t0).toISOString())} → ${localTime(new Date(t1).toISOString())}`;
  svg.append(axis);
  return svg;
}

// A legal hold on the event's footage needs a reason (a case or request number): asked for in the card.
function holdForm(e, onHeld) {
  const input = h('input', { name: 'reason', required: true, maxlength: 500, placeholder: 'case or request number' });
  const form = h('form', {
    class: 'hold-form', hidden: true,
    onsubmit: async (ev) => {
      ev.preventDefault();
      const submit = form.querySelector('button[type=submit]');
      submit.disabled = true;
      try {
        const { hold } = await api('/holds', { method: 'POST', body: { event_id: e.id, reason: input.value } });
        toast(`Footage of event ${e.id} held until released (hold ${hold.id})`);
        form.hidden = true;
        onHeld();
      } catch (err) {
        toast(err.message, 'error');
      } finally {
        submit.disabled = false;
      }
    },
  }, h('label', {}, 'Why is it held?', input), h('button', { type: 'submit' }, 'Place hold'));
  const open = h('button', {
    type: 'button', class: 'hold',
    onclick: () => { form.hidden = false; input.focus(); },
  }, 'Hold footage');
  return [open, form];
}

function holdRow(hold, ctx, reload) {
  const me = ctx.session && ctx.session.user;
  // Operators release the holds they placed; admins any (the API says the same).
  const mayRelease = me && (me.role === 'admin' || me.name === hold.created_by);
  const release = h('button', {
    type: 'button', class: 'release',
    onclick: async () => {
      release.disabled = true;
      try {
        await api(`/holds/${hold.id}/release`, { method: 'POST' });
        toast(`Hold ${hold.id} released`);
        reload();
      } catch (err) {
        toast(err.message, 'error');
        release.disabled = false;
      }
    },
  }, 'Release');
  return h('li', { class: 'hold', dataset: { hold: hold.id } },
    h('strong', {}, `${hold.camera}`), ' · ',
    `${localTime(hold.start)} → ${hold.end ? localTime(hold.end) : 'no end'}`,
    hold.event_id ? ` · event ${hold.event_id}` : '', ' · ', h('em', {}, hold.reason),
    h('span', { class: 'muted small' }, ` · by ${hold.created_by} ${localTime(hold.created_at)} `),
    mayRelease ? release : null);
}

function eventRow(e, ctx, refresh, onHeld) {
  const title = `${label(e.type)} on ${e.camera}`;
  const ack = h('button', {
    type: 'button', class: 'ack',
    onclick: async () => {
      ack.disabled = true;
      try {
        await api(`/events/${e.id}/ack`, { method: 'POST' });
        toast(`Event ${e.id} acknowledged`);
        refresh();
      } catch (err) {
        toast(err.message, 'error');
        ack.disabled = false;
      }
    },
  }, 'Acknowledge');
  return h('li', { class: `event sev-${e.severity}`, id: `event-${e.id}`, dataset: { event: e.id, type: e.type } },
    e.snapshot_url ? h('img', { src: e.snapshot_url, alt: `snapshot of ${title}`, loading: 'lazy' }) : h('span', { class: 'no-thumb' }, 'no snapshot'),
    h('div', { class: 'meta' },
      h('strong', {}, title),
      h('span', { class: `badge sev-${e.severity}` }, e.severity),
      h('span', { class: 'muted small' }, e.start ? localTime(e.start) : `at ${seconds(e.start_t)}`,
        e.end_t !== null && e.end_t !== undefined ? ` · ${seconds(e.end_t - e.start_t)}` : ' · ongoing'),
      h('p', {}, e.summary),
      h('div', { class: 'actions' },
        ctx.can('view_clips') && e.source ? h('button', {
          type: 'button', onclick: () => openPlayer({ kind: 'event', id: e.id, title, canExport: ctx.can('export') }),
        }, 'Play clip') : null,
        e.acknowledged_at
          ? h('span', { class: 'muted small' }, `acknowledged by ${e.acknowledged_by} ${localTime(e.acknowledged_at)}`)
          : ctx.can('acknowledge') ? ack : null,
        // Holding footage keeps it from deletion, as an export does: the same people may.
        ctx.can('export') && e.start ? holdForm(e, onHeld) : null)));
}

export async function render(view, params, ctx) {
  const filters = {
    camera: params.get('camera') || '',
    type: params.get('type') || '',
    since: params.get('since') || '',
    open: params.get('open') === '1',
    offset: Math.max(0, Number(params.get('offset')) || 0),
  };
  let cameras = [];
  try {
    cameras = (await api('/cameras', { query: { limit: 500 } })).items.map((c) => c.name);
  } catch { /* the filter just offers no cameras */ }
  const select = (name, options, value) => h('select', { name, onchange: apply },
    Object.entries(options).map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
  const form = h('form', { class: 'filters', 'aria-label': 'Filter events' },
    h('label', {}, 'Camera', select('camera', { '': 'all cameras', ...Object.fromEntries(cameras.map((c) => [c, c])) }, filters.camera)),
    h('label', {}, 'Type', select('type', { '': 'all types', ...Object.fromEntries(EVENT_TYPES.map((t) => [t, label(t)])) }, filters.type)),
    h('label', {}, 'When', select('since', SINCE, filters.since)),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'open', checked: filters.open, onchange: apply }), 'Only unacknowledged'));
  function apply() {
    const data = new FormData(form);
    const next = {};
    for (const key of ['camera', 'type', 'since']) if (data.get(key)) next[key] = data.get(key);
    if (data.get('open')) next.open = '1';
    ctx.go('events', next);
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); apply(); });
  const body = h('section', { 'aria-label': 'Events' });
  const holdsBox = h('section', { id: 'holds', 'aria-label': 'Legal holds' });
  view.append(h('h1', {}, 'Events'), form, body, ctx.can('export') ? holdsBox : '');

  let shownHolds = '';
  const loadHolds = async () => {
    if (!ctx.can('export')) return;
    let page;
    try {
      page = await api('/holds', { query: { limit: 100 } });
    } catch (err) {
      holdsBox.replaceChildren(errorBox(err));
      return;
    }
    const key = JSON.stringify(page.items.map((x) => x.id));
    if (key === shownHolds) return;
    shownHolds = key;
    fill(holdsBox, h('h2', {}, 'Legal holds'),
      h('p', { class: 'muted small' }, 'Footage under a legal hold is never deleted by retention until the hold is released.'),
      page.items.length
        ? h('ul', { class: 'hold-list' }, page.items.map((x) => holdRow(x, ctx, loadHolds)))
        : h('p', { id: 'no-holds' }, 'No footage is held.'));
  };

  let shown = '';
  const refresh = async () => {
    let page;
    try {
      page = await api('/events', {
        query: {
          camera: filters.camera, type: filters.type, since: sinceIso(filters.since),
          unacknowledged: filters.open ? 'true' : null, limit: PAGE, offset: filters.offset,
        },
      });
    } catch (err) {
      body.replaceChildren(errorBox(err));
      return;
    }
    // Re-render only when something changed, so the list does not jump under the reader.
    const key = JSON.stringify(page.items.map((e) => [e.id, e.state, e.acknowledged_at])) + page.total;
    if (key === shown) return;
    shown = key;
    const pick = (id) => {
      const row = document.getElementById(`event-${id}`);
      if (row) { row.scrollIntoView({ block: 'center' }); row.classList.add('picked'); setTimeout(() => row.classList.remove('picked'), 1500); }
    };
    const pager = h('div', { class: 'pager' },
      filters.offset > 0 ? h('a', { href: `#/events?${new URLSearchParams({ ...Object.fromEntries(params), offset: Math.max(0, filters.offset - PAGE) })}` }, '← Newer') : null,
      h('span', { class: 'muted small' }, page.total ? `${filters.offset + 1}–${filters.offset + page.items.length} of ${page.total}` : ''),
      filters.offset + PAGE < page.total ? h('a', { href: `#/events?${new URLSearchParams({ ...Object.fromEntries(params), offset: filters.offset + PAGE })}` }, 'Older →') : null);
    fill(body, 
      page.items.length ? timeline(page.items, pick) : null,
      page.items.length
        ? h('ul', { class: 'event-list' }, page.items.map((e) => eventRow(e, ctx, refresh, loadHolds)))
        : h('p', { id: 'no-events' }, 'No events match these filters.'),
      pager);
  };
  await Promise.all([refresh(), loadHolds()]);
  const timer = setInterval(() => { refresh(); loadHolds(); }, REFRESH_MS);
  return () => clearInterval(timer);
}
