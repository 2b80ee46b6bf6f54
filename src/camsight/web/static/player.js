// Plays a track's or an event's clip in a dialog, starting at the right moment, with the
// track's box drawn over the video on a canvas (the video itself is never altered).

import { api, h, toast, seconds, localTime } from './api.js';

// The box at time t: interpolated between the two nearest samples, none in gaps over 1 s.
export function boxAt(boxes, t) {
  if (!boxes.length || t < boxes[0].t - 0.25 || t > boxes[boxes.length - 1].t + 0.25) return null;
  let lo = 0;
  let hi = boxes.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (boxes[mid].t <= t) lo = mid; else hi = mid;
  }
  const a = boxes[lo];
  const b = boxes[hi];
  if (t <= a.t || a === b) return a.box;
  if (t >= b.t) return b.box;
  if (b.t - a.t > 1.0) return Math.abs(t - a.t) < Math.abs(b.t - t) ? a.box : b.box;
  const k = (t - a.t) / (b.t - a.t);
  return a.box.map((v, i) => v + (b.box[i] - v) * k);
}

// Where the picture lies inside the <video> element (object-fit: contain letterboxes it).
function pictureRect(video) {
  const w = video.clientWidth;
  const hgt = video.clientHeight;
  const vw = video.videoWidth || w;
  const vh = video.videoHeight || hgt;
  const scale = Math.min(w / vw, hgt / vh);
  return { x: (w - vw * scale) / 2, y: (hgt - vh * scale) / 2, w: vw * scale, h: vh * scale };
}

export async function openPlayer({ kind, id, title, canExport, onMoreLike }) {
  const path = kind === 'event' ? `/events/${id}/playback` : `/tracks/${id}/playback`;
  let info;
  try {
    info = await api(path);
  } catch (err) {
    toast(err.message, 'error');
    return;
  }
  const boxes = info.boxes || [];
  const video = h('video', {
    controls: true, muted: true, playsinline: true, preload: 'auto', src: info.clip_url,
    'aria-label': `clip of ${title}`,
  });
  const canvas = h('canvas', { class: 'overlay', 'aria-hidden': 'true' });
  const status = h('p', { class: 'muted small', id: 'player-status' });
  const close = h('button', { type: 'button', class: 'close', 'aria-label': 'Close' }, '×');
  const actions = h('div', { class: 'actions' },
    canExport && info.download_url
      ? h('a', { class: 'button', href: info.download_url, download: '' }, 'Export clip') : null,
    onMoreLike ? h('button', { type: 'button', onclick: () => { dialog.close(); onMoreLike(); } }, 'More like this') : null);
  const dialog = h('dialog', { class: 'player', 'aria-label': title },
    h('div', { class: 'player-head' }, h('h2', {}, title), close),
    h('div', { class: 'stage' }, video, canvas),
    status, actions);
  document.body.append(dialog);

  let frame = 0;
  const draw = () => {
    const rect = pictureRect(video);
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(video.clientWidth * ratio);
    canvas.height = Math.round(video.clientHeight * ratio);
    canvas.style.width = `${video.clientWidth}px`;
    canvas.style.height = `${video.clientHeight}px`;
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, video.clientWidth, video.clientHeight);
    const box = boxAt(boxes, video.currentTime);
    canvas.dataset.box = box ? 'shown' : 'none';
    if (box) {
      const [x1, y1, x2, y2] = box;
      ctx.lineWidth = 3;
      ctx.strokeStyle = '#facc15';
      ctx.strokeRect(rect.x + x1 * rect.w, rect.y + y1 * rect.h, (x2 - x1) * rect.w, (y2 - y1) * rect.h);
    }
    status.textContent = `${seconds(video.currentTime)} of ${seconds(info.duration)}`
      + (info.recorded_start ? ` · recorded ${localTime(info.recorded_start)}` : '')
      + (info.note ? ` · ${info.note}` : '');
    frame = requestAnimationFrame(draw);
  };
  video.addEventListener('loadedmetadata', () => {
    // Start at the moment the track (or event) begins, not at the padding before it.
    video.currentTime = Math.max(0, Number(info.offset) || 0);
    video.play().catch(() => { /* autoplay refused: the controls are there */ });
  });
  video.addEventListener('error', () => { status.textContent = 'the clip could not be played'; });
  dialog.addEventListener('close', () => {
    cancelAnimationFrame(frame);
    video.pause();
    video.removeAttribute('src');
    video.load();
    dialog.remove();
  });
  close.addEventListener('click', () => dialog.close());
  dialog.showModal();
  frame = requestAnimationFrame(draw);
  close.focus();
}
