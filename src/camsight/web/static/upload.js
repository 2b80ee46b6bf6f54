// Upload page: drop a video file, watch it upload and get indexed, then search it.

import { API, api, fill, h, errorBox, localTime } from './api.js';

const POLL_MS = 1000;

function send(file, camera, recordedAt, onProgress) {
  // XMLHttpRequest, not fetch: only it reports upload progress.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${API}/uploads`);
    xhr.responseType = 'json';
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(new Error((xhr.response && xhr.response.error && xhr.response.error.message) || `upload failed (${xhr.status})`));
    });
    xhr.addEventListener('error', () => reject(new Error('the upload was interrupted')));
    const form = new FormData();
    form.append('file', file);
    if (camera) form.append('camera', camera);
    if (recordedAt) form.append('recorded_at', recordedAt);
    xhr.send(form);
  });
}

// "3 tracks (2 person, 1 car)" from the job's counts per class or type.
export function counted(counts, noun) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0);
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  const parts = entries.map(([what, n]) => `${n} ${what.replace(/_/g, ' ')}`).join(', ');
  return `${total} ${noun}${total === 1 ? '' : 's'}${parts ? ` (${parts})` : ''}`;
}

function eta(seconds) {
  if (seconds === null || seconds === undefined) return '';
  return seconds < 90 ? `${Math.round(seconds)} s left` : `${Math.round(seconds / 60)} min left`;
}

// A failed job may be run again by whoever may start such a job (a camera's re-analysis: camera admins).
function canRetry(job, ctx) {
  return job.state === 'failed' && (job.kind !== 'reindex' || ctx.can('manage_cameras'));
}

function jobLine(job, ctx, retry) {
  const pct = Math.round((job.progress || 0) * 100);
  return h('li', { class: `job ${job.state}`, dataset: { job: job.id } },
    h('strong', {}, job.file || job.kind), ` on ${job.camera} · `, h('span', { class: 'state' }, job.state),
    job.state === 'running' ? ` ${pct}%` : '',
    job.recorded_at ? h('span', { class: 'muted small' }, ` · recorded ${localTime(job.recorded_at)}`) : null,
    job.finished_at ? h('span', { class: 'muted small' }, ` · finished ${localTime(job.finished_at)}`) : null,
    job.error ? h('span', { class: 'error small' }, ` · ${job.error}`) : null,
    canRetry(job, ctx) ? [' ', h('button', { type: 'button', class: 'retry', onclick: (e) => retry(job, e.target) }, 'Retry')] : null);
}

export async function render(view, params, ctx) {
  const fileInput = h('input', { type: 'file', name: 'file', accept: 'video/*,.mkv,.avi,.mp4,.mov,.ts', id: 'upload-file' });
  const camera = h('input', { name: 'camera', value: params.get('camera') || 'uploads', maxlength: 64, pattern: '[A-Za-z0-9_.\\-]+', required: true });
  // The browser's local time; sent as UTC so the server never guesses the uploader's time zone.
  const recorded = h('input', { type: 'datetime-local', name: 'recorded_at', step: 1, id: 'upload-recorded-at' });
  const drop = h('label', { class: 'drop', for: 'upload-file', tabindex: '0' },
    h('strong', {}, 'Drop a video file here'), h('span', {}, 'or press to choose one'), fileInput);
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Progress' });
  const status = h('p', { id: 'upload-status', role: 'status' });
  const progress = h('section', { class: 'card progress', hidden: true }, h('h2', {}, 'Progress'), bar, status);
  const recent = h('ul', { class: 'jobs' });
  view.append(
    h('h1', {}, 'Add footage'),
    h('p', { class: 'muted small' }, 'The file is kept on this box, analysed like a camera\'s recording, and becomes searchable.'),
    h('form', { class: 'card upload' },
      h('label', {}, 'Camera name for this footage', camera),
      h('label', {}, 'Recording started at (optional; otherwise taken from the file)', recorded),
      drop),
    progress,
    h('h2', {}, 'Recent'), recent);

  let timer = null;
  let stopped = false;
  const loadRecent = async () => {
    try {
      const page = await api('/jobs', { query: { limit: 10 } });
      recent.replaceChildren(...page.items.map((job) => jobLine(job, ctx, retry)));
      if (!page.items.length) recent.append(h('li', { class: 'muted' }, 'Nothing uploaded yet.'));
    } catch (err) {
      recent.replaceChildren(errorBox(err));
    }
  };

  const follow = async (job) => {
    if (stopped) return;
    const pct = Math.round((job.progress || 0) * 100);
    bar.value = job.progress || 0;
    if (job.state === 'done' || job.state === 'damaged') {
      // Damaged: what could be decoded is indexed; the message says what is missing.
      const target = `#/search?${new URLSearchParams({ q: 'person', camera: job.camera })}`;
      fill(status, `Indexed ${job.file || ''}: ${counted(job.tracks, 'track')}, ${counted(job.events, 'event')}. `,
        job.message ? h('span', { class: job.state === 'damaged' ? 'error' : '' }, `${job.message}. `) : '',
        ctx.can('search') ? h('a', { href: target, id: 'search-upload' }, 'Search this footage') : null);
      loadRecent();
      return;
    }
    if (job.state === 'failed') {
      fill(status, h('span', { class: 'error' }, `Indexing failed: ${job.error || 'unknown error'}`),
        canRetry(job, ctx) ? [' ', h('button', { type: 'button', id: 'retry-upload', onclick: (e) => retry(job, e.target) }, 'Retry')] : null);
      loadRecent();
      return;
    }
    status.textContent = job.state === 'queued' ? 'Waiting for the indexer…'
      : `Indexing ${pct}%${job.fps ? ` · ${job.fps.toFixed(1)} frames/s` : ''} ${eta(job.eta_seconds)}`;
    timer = setTimeout(async () => {
      try { follow(await api(`/jobs/${job.id}`)); } catch (err) { status.replaceChildren(errorBox(err)); }
    }, POLL_MS);
  };

  // Run a failed job again and follow it in the progress box, as if it had just been uploaded.
  async function retry(job, button) {
    button.disabled = true;
    clearTimeout(timer);
    progress.hidden = false;
    try {
      const answer = await api(`/jobs/${job.id}/retry`, { method: 'POST' });
      follow(answer.job);
      loadRecent();
    } catch (err) {
      button.disabled = false;
      status.replaceChildren(h('span', { class: 'error' }, `Cannot retry ${job.file || `job ${job.id}`}: ${err.message}`));
    }
  }

  const start = async (file) => {
    if (!file) return;
    if (!camera.reportValidity() || !recorded.reportValidity()) return;
    const when = recorded.value ? new Date(recorded.value) : null;
    if (when && Number.isNaN(when.getTime())) return;
    progress.hidden = false;
    bar.value = 0;
    status.textContent = `Uploading ${file.name}…`;
    try {
      const answer = await send(file, camera.value.trim(), when && when.toISOString(), (share) => {
        bar.value = share;
        status.textContent = `Uploading ${file.name}: ${Math.round(share * 100)}%`;
      });
      follow(answer.job);
    } catch (err) {
      status.replaceChildren(h('span', { class: 'error' }, err.message));
    }
  };
  fileInput.addEventListener('change', () => start(fileInput.files[0]));
  drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); fileInput.click(); } });
  for (const type of ['dragenter', 'dragover']) drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    start(e.dataTransfer.files[0]);
  });
  await loadRecent();
  return () => { stopped = true; clearTimeout(timer); };
}
