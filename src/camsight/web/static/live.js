// A camera's live picture in a dialog: an MJPEG stream in an <img>, privacy masks already blanked by
// the server. Closing the dialog (or leaving the page) drops the connection, and the camera's worker
// stops making pictures a few seconds later.

import { API, h } from './api.js';

let current = null;

const liveUrl = (name) => `${API}/cameras/${encodeURIComponent(name)}/live`;

// Why the stream did not start or stopped, in the server's words (the <img> cannot tell).
async function reason(name) {
  const stop = new AbortController();
  try {
    const response = await fetch(liveUrl(name), { credentials: 'same-origin', signal: stop.signal });
    if (response.ok) return 'the live picture stopped (the camera may be reconnecting)';
    const data = await response.json().catch(() => ({}));
    return (data.error && data.error.message) || `the live picture could not start (${response.status})`;
  } catch {
    return 'cannot reach the camsight server';
  } finally {
    stop.abort(); // an answer that is a stream again must not stay open
  }
}

export function closeLive() {
  if (!current) return;
  const { dialog, img } = current;
  current = null;
  // Without a source the browser drops the connection, which is what stops the stream.
  img.removeAttribute('src');
  img.remove();
  if (dialog.open) dialog.close();
  dialog.remove();
}

export function openLive(camera) {
  closeLive();
  const name = camera.name;
  const status = h('p', { class: 'muted small', id: 'live-status', role: 'status' }, 'Connecting…');
  const img = h('img', { class: 'live-picture', alt: `live picture from ${name}` });
  const close = h('button', { type: 'button', class: 'close', 'aria-label': 'Close the live view' }, '×');
  const dialog = h('dialog', { class: 'player live', 'aria-label': `Live view of ${name}` },
    h('div', { class: 'player-head' }, h('h2', {}, `Live · ${name}`), close),
    h('div', { class: 'stage live-stage' }, img),
    status);
  const opened = performance.now();
  img.addEventListener('load', () => {
    if (status.dataset.state === 'live') return;
    status.dataset.state = 'live';
    status.textContent = `Live (first picture after ${((performance.now() - opened) / 1000).toFixed(1)} s)`;
  });
  img.addEventListener('error', async () => {
    if (!current || current.img !== img) return;
    status.dataset.state = 'error';
    status.className = 'error small';
    status.textContent = await reason(name);
  });
  close.addEventListener('click', closeLive);
  dialog.addEventListener('close', closeLive);
  document.body.append(dialog);
  current = { dialog, img };
  img.src = liveUrl(name);
  dialog.showModal();
  close.focus();
}
