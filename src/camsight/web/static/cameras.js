// Cameras page: each camera's latest picture and health; for admins, adding and removing cameras
// and an editor that draws zones, lines and privacy masks on the picture and saves them to the config.

import { api, fill, h, toast, errorBox, localTime, plural } from './api.js';
import { openLive, closeLive } from './live.js';

const KINDS = { zone: 'zones', line: 'lines', mask: 'masks' };
const MIN_POINTS = { zone: 3, line: 2, mask: 3 };
const round = (v) => Math.round(v * 10000) / 10000;
const REFRESH_MS = 5000;
const JOB_POLL_MS = 1000;

function healthText(health) {
  if (!health) return 'recorded footage only';
  const parts = [health.state];
  if (health.state === 'connected' || health.fps_in) parts.push(`${health.fps_in} fps in`, `${health.fps_analysed} analysed`, `lag ${health.lag_seconds} s`);
  if (health.last_frame_at) parts.push(`last frame ${localTime(health.last_frame_at)}`);
  if (health.reconnects) parts.push(plural(health.reconnects, 'reconnect'));
  return parts.join(' · ');
}

// What the card's badge says (and its colour class): a disabled camera says so whatever its health.
function cardState(camera) {
  if (camera.enabled === false) return 'disabled';
  return camera.health ? camera.health.state : 'files';
}

function snapshotUrl(camera) {
  // A fresh picture each time the page is drawn (the server caches it sensibly).
  return `${camera.snapshot_url}?t=${Date.now()}`;
}

function cameraCard(camera, ctx, reload) {
  const manage = ctx.can('manage_cameras');
  const state = cardState(camera);
  return h('li', { class: 'camera-card', dataset: { camera: camera.name } },
    h('img', { src: snapshotUrl(camera), alt: `latest picture from ${camera.name}`, loading: 'lazy', onerror: (e) => { e.target.replaceWith(h('span', { class: 'no-thumb' }, 'no picture yet')); } }),
    h('div', { class: 'meta' },
      h('strong', {}, camera.name),
      h('span', { class: `badge state state-${state}` }, state),
      h('span', { class: 'muted small health' }, healthText(camera.health)),
      // Run by one of several nodes (camsight run --node): which one, as a node that is down explains.
      camera.node ? h('span', { class: 'muted small node' }, `node ${camera.node}`) : null,
      h('span', { class: 'error small health-error', hidden: !(camera.health && camera.health.error) }, (camera.health && camera.health.error) || ''),
      // A long path or URL is cut with an ellipsis to fit the card; the whole of it shows on hover.
      camera.url ? h('code', { class: 'small source', title: camera.url }, camera.url) : null,
      h('span', { class: 'small shapes' },
        `${plural(Object.keys(camera.zones || {}).length, 'zone')} · ${plural(Object.keys(camera.lines || {}).length, 'line')} · `
        + `${plural(Object.keys(camera.masks || {}).length, 'mask')} · ${plural((camera.rules || []).length, 'rule')}`),
      h('div', { class: 'actions' },
        camera.kind === 'live' && camera.enabled !== false
          ? h('button', { type: 'button', class: 'live-button', onclick: () => openLive(camera) }, 'Live') : null,
        manage ? h('a', { class: 'button', href: `#/cameras?edit=${encodeURIComponent(camera.name)}` }, 'Edit zones and masks') : null,
        ctx.can('view_events') ? h('a', { href: `#/events?camera=${encodeURIComponent(camera.name)}` }, 'Events') : null,
        manage && camera.in_config ? h('button', {
          type: 'button', class: 'danger',
          onclick: async () => {
            if (!window.confirm(`Remove camera ${camera.name} from the config? Its stored footage and tracks are kept.`)) return;
            try {
              await api(`/cameras/${encodeURIComponent(camera.name)}`, { method: 'DELETE' });
              toast(`Camera ${camera.name} removed`);
              reload();
            } catch (err) { toast(err.message, 'error'); }
          },
        }, 'Remove') : null)));
}

function addCameraForm(reload) {
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h('form', { class: 'card add-camera' },
    h('h2', {}, 'Add a camera'),
    h('label', {}, 'Name', h('input', { name: 'name', required: true, maxlength: 64, pattern: '[A-Za-z0-9_.\\-]+', placeholder: 'gate' })),
    h('label', {}, 'Stream URL', h('input', { name: 'url', required: true, maxlength: 2000, placeholder: 'rtsp://10.0.0.5/stream1' })),
    message,
    h('button', { type: 'submit', class: 'primary' }, 'Add camera'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    message.hidden = true;
    try {
      await api('/cameras', { method: 'POST', body: { name: data.get('name'), url: data.get('url') } });
      toast(`Camera ${data.get('name')} added`);
      reload();
    } catch (err) {
      message.textContent = err.message;
      message.hidden = false;
    }
  });
  return form;
}

export async function render(view, params, ctx) {
  const editing = params.get('edit');
  if (editing) return renderEditor(view, editing, ctx);
  view.append(h('h1', {}, 'Cameras'));
  const list = h('ul', { class: 'camera-grid' });
  view.append(list);
  let shown = null;
  const reload = async () => {
    let page;
    try {
      page = await api('/cameras', { query: { limit: 500 } });
    } catch (err) {
      list.replaceChildren(errorBox(err));
      shown = null;
      return;
    }
    // Rebuild the cards only when cameras or their settings changed; otherwise update health and
    // live pictures in place, so the page does not flicker or steal keyboard focus.
    const key = JSON.stringify(page.items.map(({ health, ...rest }) => rest));
    if (key !== shown) {
      shown = key;
      list.replaceChildren(...page.items.map((c) => cameraCard(c, ctx, reload)));
      if (!page.items.length) list.replaceChildren(h('li', {}, 'No cameras yet.'));
      return;
    }
    for (const camera of page.items) {
      const card = list.querySelector(`[data-camera="${CSS.escape(camera.name)}"]`);
      if (!card) continue;
      const state = cardState(camera);
      const badge = card.querySelector('.state');
      badge.className = `badge state state-${state}`;
      badge.textContent = state;
      card.querySelector('.health').textContent = healthText(camera.health);
      // Why a camera is failing (and when it is tried again) changes between refreshes too.
      const error = card.querySelector('.health-error');
      error.textContent = (camera.health && camera.health.error) || '';
      error.hidden = !error.textContent;
      const img = card.querySelector('img');
      if (img && camera.health && !['stopped', 'node-down', 'node-stopped', 'not-assigned'].includes(camera.health.state)) img.src = snapshotUrl(camera);
    }
  };
  await reload();
  if (ctx.can('manage_cameras')) view.append(addCameraForm(() => ctx.go('cameras')));
  // Health and pictures are live: refresh them while the page is open and visible.
  const timer = setInterval(() => { if (!document.hidden) reload(); }, REFRESH_MS);
  return () => { clearInterval(timer); closeLive(); };
}

// Points in the config may be pixels or 0-1; the editor works in 0-1 of the picture.
function normalised(points, units, size) {
  const pixels = units === 'pixels' || (units !== 'normalised' && points.some(([x, y]) => x > 1 || y > 1));
  if (!pixels) return points.map(([x, y]) => [x, y]);
  const [w, hgt] = size || [1, 1];
  return points.map(([x, y]) => [x / w, y / hgt]);
}

function renderEditor(view, name, ctx) {
  const state = { camera: null, shapes: [], draft: [], tool: 'zone', size: null, rules: [] };
  const svgNs = 'http://www.w3.org/2000/svg';
  const image = h('img', { alt: `latest picture from ${name}`, class: 'editor-image' });
  const svg = document.createElementNS(svgNs, 'svg');
  svg.setAttribute('viewBox', '0 0 1 1');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'editor-overlay');
  svg.setAttribute('aria-hidden', 'true');
  const canvasBox = h('div', { class: 'editor-stage', id: 'editor-stage' }, image, svg);
  const nameInput = h('input', { name: 'shape-name', maxlength: 64, required: true, value: 'zone1', 'aria-label': 'Name of the new shape' });
  const alertBox = h('input', { type: 'checkbox', name: 'alert', checked: true });
  const alertLabel = h('label', { class: 'check' }, alertBox, h('span', { id: 'alert-text' }, 'Alert when a person enters'));
  const pointsInput = h('input', { name: 'points', 'aria-label': 'Points as x,y pairs between 0 and 1, e.g. 0.1,0.2 0.5,0.2 0.5,0.8', placeholder: '0.1,0.2 0.5,0.2 0.5,0.8' });
  const shapeList = h('ul', { class: 'shape-list', 'aria-label': 'Shapes on this camera' });
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  // After a save that re-analyses the footage: how that job goes, until it is done or failed.
  const jobStatus = h('p', { id: 'reanalysis', role: 'status', hidden: true });
  let jobTimer = null;
  let closed = false;
  const toolButtons = Object.keys(KINDS).map((tool) => h('label', { class: 'check' },
    h('input', { type: 'radio', name: 'tool', value: tool, checked: tool === state.tool, onchange: () => { state.tool = tool; state.draft = []; updateTool(); draw(); } }),
    tool === 'mask' ? 'Privacy mask' : tool[0].toUpperCase() + tool.slice(1)));

  function updateTool() {
    alertLabel.hidden = state.tool === 'mask';
    document.getElementById('alert-text').textContent = state.tool === 'line' ? 'Count people crossing it' : 'Alert when a person enters';
    const taken = new Set(state.shapes.filter((s) => s.kind === state.tool).map((s) => s.name));
    let i = 1;
    while (taken.has(`${state.tool}${i}`)) i += 1;
    nameInput.value = `${state.tool}${i}`;
  }

  function poly(points, cls, closed) {
    const el = document.createElementNS(svgNs, closed ? 'polygon' : 'polyline');
    el.setAttribute('points', points.map(([x, y]) => `${x},${y}`).join(' '));
    el.setAttribute('class', cls);
    el.setAttribute('vector-effect', 'non-scaling-stroke');
    return el;
  }

  function draw() {
    svg.replaceChildren();
    for (const shape of state.shapes) svg.append(poly(shape.points, `shape ${shape.kind}`, shape.kind !== 'line'));
    if (state.draft.length) svg.append(poly(state.draft, `draft ${state.tool}`, false));
    pointsInput.value = state.draft.map(([x, y]) => `${round(x)},${round(y)}`).join(' ');
    shapeList.replaceChildren(...state.shapes.map((shape, i) => h('li', { class: shape.kind },
      `${shape.kind === 'mask' ? 'privacy mask' : shape.kind} “${shape.name}”`,
      shape.rule ? h('span', { class: 'muted small' }, ` · ${shape.rule.type.replace(/_/g, ' ')}`) : null,
      h('button', { type: 'button', class: 'link', 'aria-label': `Delete ${shape.kind} ${shape.name}`, onclick: () => { state.shapes.splice(i, 1); draw(); } }, 'Delete'))));
    if (!state.shapes.length) shapeList.append(h('li', { class: 'muted' }, 'No zones, lines or masks yet.'));
  }

  function finishShape() {
    message.hidden = true;
    const shapeName = nameInput.value.trim();
    const need = MIN_POINTS[state.tool];
    const problem = !/^[A-Za-z0-9_.-]{1,64}$/.test(shapeName) ? 'name the shape with letters, digits, - _ or .'
      : state.shapes.some((s) => s.kind === state.tool && s.name === shapeName) ? `there is already a ${state.tool} called ${shapeName}`
        : state.draft.length < need ? `a ${state.tool} needs ${need === 2 ? 'exactly 2' : `at least ${need}`} points`
          : state.tool === 'line' && state.draft.length > 2 ? 'a line has exactly 2 points' : null;
    if (problem) {
      message.textContent = problem;
      message.hidden = false;
      return;
    }
    const shape = { kind: state.tool, name: shapeName, points: state.draft.map(([x, y]) => [round(x), round(y)]) };
    if (alertBox.checked && state.tool === 'zone') shape.rule = { type: 'zone_intrusion', zone: shapeName, classes: ['person'], min_seconds: 0.5 };
    if (alertBox.checked && state.tool === 'line') shape.rule = { type: 'line_crossing', line: shapeName };
    state.shapes.push(shape);
    state.draft = [];
    updateTool();
    draw();
  }

  svg.addEventListener('click', (e) => {
    const rect = svg.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (e.clientX - rect.left) / rect.width));
    const y = Math.min(1, Math.max(0, (e.clientY - rect.top) / rect.height));
    if (state.tool === 'line' && state.draft.length >= 2) state.draft = [];
    state.draft.push([x, y]);
    draw();
  });
  svg.addEventListener('dblclick', (e) => { e.preventDefault(); finishShape(); });
  pointsInput.addEventListener('change', () => {
    const pairs = pointsInput.value.trim().split(/\s+/).filter(Boolean).map((p) => p.split(',').map(Number));
    if (pairs.every((p) => p.length === 2 && p.every((v) => Number.isFinite(v) && v >= 0 && v <= 1))) {
      state.draft = pairs;
      draw();
    } else {
      message.textContent = 'points must be x,y pairs between 0 and 1, separated by spaces';
      message.hidden = false;
    }
  });

  async function save() {
    message.hidden = true;
    if (state.draft.length) finishShape();
    if (!message.hidden) return;
    const body = { zones: {}, lines: {}, masks: {} };
    const kept = new Set();
    for (const shape of state.shapes) {
      const block = { points: shape.points, units: 'normalised' };
      if (shape.extra) Object.assign(block, shape.extra);
      body[KINDS[shape.kind]][shape.name] = block;
      kept.add(`${shape.kind}:${shape.name}`);
    }
    // Rules on zones or lines that were deleted go with them; the others stay as they were.
    body.rules = state.rules.filter((r) => (!r.zone || kept.has(`zone:${r.zone}`)) && (!r.line || kept.has(`line:${r.line}`)));
    for (const shape of state.shapes) if (shape.rule) body.rules.push(shape.rule);
    saveButton.disabled = true;
    try {
      const result = await api(`/cameras/${encodeURIComponent(name)}`, { method: 'PATCH', body });
      if (!result.job) {
        toast('Saved');
        ctx.go('cameras');
        return;
      }
      // Stay here and follow the re-analysis: a failure must be seen where it was caused.
      showJob(result.job);
    } catch (err) {
      message.textContent = err.message;
      message.hidden = false;
    } finally {
      saveButton.disabled = false;
    }
  }

  function showJob(job) {
    clearTimeout(jobTimer);
    if (closed) return;
    jobStatus.hidden = false;
    if (job.state === 'failed') {
      const retry = h('button', { type: 'button', id: 'retry-job', onclick: () => retryJob(job, retry) }, 'Retry');
      fill(jobStatus, h('span', { class: 'error' }, `Saved, re-analysis failed: ${job.error || 'unknown error'}`), ' ', retry);
      return;
    }
    if (job.state === 'done') {
      fill(jobStatus, `Saved; ${name}'s footage is re-analysed with the new zones${job.message ? ` (${job.message})` : ''}. `,
        h('a', { href: '#/cameras' }, 'Back to cameras'));
      return;
    }
    jobStatus.textContent = job.state === 'queued' ? `Saved; re-analysis of ${name}'s footage is waiting to start…`
      : `Saved; re-analysing ${name}'s footage with the new zones: ${Math.round((job.progress || 0) * 100)}%`;
    jobTimer = setTimeout(async () => {
      try {
        showJob(await api(`/jobs/${job.id}`));
      } catch (err) {
        if (!closed) fill(jobStatus, h('span', { class: 'error' }, `Saved; cannot follow the re-analysis: ${err.message}`));
      }
    }, JOB_POLL_MS);
  }

  async function retryJob(job, button) {
    button.disabled = true;
    try {
      showJob((await api(`/jobs/${job.id}/retry`, { method: 'POST' })).job);
    } catch (err) {
      button.disabled = false;
      fill(jobStatus, h('span', { class: 'error' }, `Saved, re-analysis failed: ${job.error || 'unknown error'}; retry refused: ${err.message}`), ' ', button);
    }
  }

  const saveButton = h('button', { type: 'button', class: 'primary', id: 'save-shapes', onclick: save }, 'Save to config');
  view.append(
    h('h1', {}, `Zones, lines and masks · ${name}`),
    h('p', { class: 'muted small' },
      'Click on the picture to add points; double-click or press “Finish shape” to close it. ',
      'Keyboard: type the points below (x,y between 0 and 1), then Enter. Privacy masks are blanked ',
      'in everything users see and are left out of analysis.'),
    h('div', { class: 'editor' },
      canvasBox,
      h('form', { class: 'editor-tools card', onsubmit: (e) => { e.preventDefault(); finishShape(); } },
        h('fieldset', {}, h('legend', {}, 'Draw'), toolButtons),
        h('label', {}, 'Name', nameInput),
        alertLabel,
        h('label', {}, 'Points', pointsInput),
        message,
        h('div', { class: 'actions' },
          h('button', { type: 'submit', id: 'finish-shape' }, 'Finish shape'),
          h('button', { type: 'button', onclick: () => { state.draft.pop(); draw(); } }, 'Undo point'),
          h('button', { type: 'button', onclick: () => { state.draft = []; draw(); } }, 'Clear')),
        h('h2', {}, 'On this camera'),
        shapeList,
        h('div', { class: 'actions' }, saveButton, h('a', { href: '#/cameras' }, 'Cancel')),
        jobStatus)));

  (async () => {
    try {
      const camera = await api(`/cameras/${encodeURIComponent(name)}`);
      state.camera = camera;
      state.size = camera.size;
      state.rules = camera.rules || [];
      const load = (kind, blocks) => {
        for (const [shapeName, block] of Object.entries(blocks || {})) {
          const { points, units, ...extra } = block;
          state.shapes.push({ kind, name: shapeName, points: normalised(points, units, state.size), extra });
        }
      };
      load('zone', camera.zones);
      load('line', camera.lines);
      load('mask', camera.masks);
      image.src = snapshotUrl(camera);
      image.addEventListener('load', () => {
        if (!state.size) state.size = [image.naturalWidth, image.naturalHeight];
      });
      image.addEventListener('error', () => { canvasBox.classList.add('no-picture'); });
      updateTool();
      draw();
    } catch (err) {
      view.replaceChildren(h('h1', {}, 'Zones, lines and masks'), errorBox(err));
    }
  })();
  document.addEventListener('keydown', onKey);
  function onKey(e) {
    if (e.target instanceof HTMLInputElement) return;
    if (e.key === 'Escape') { state.draft = []; draw(); }
    if (e.key === 'Backspace' && state.draft.length) { e.preventDefault(); state.draft.pop(); draw(); }
    if (e.key === 'Enter' && state.draft.length) { e.preventDefault(); finishShape(); }
  }
  return () => {
    closed = true;
    clearTimeout(jobTimer);
    document.removeEventListener('keydown', onKey);
  };
}
