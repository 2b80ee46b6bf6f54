// Search page: one box, the interpretation as removable chips, results as a grid of thumbnails.

import { api, fill, h, toast, errorBox, localTime, seconds } from './api.js';
import { openPlayer } from './player.js';

const CHIP_LABEL = {
  class: 'object', attribute: 'looks', camera: 'camera', since: 'after', until: 'before',
  time_of_day: 'time of day', not_analysed: 'not analysed', unknown: 'not understood', corrected: 'read as',
};

// Removes a chip's words from the query text; null when they are not there verbatim.
export function withoutChip(query, chip) {
  const words = chip.text.trim();
  if (!words) return null;
  const escaped = words.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+');
  const negation = chip.negated ? '(?:\\b(?:not|no|without)\\s+(?:an?\\s+)?)?' : '';
  const pattern = new RegExp(`${negation}\\b${escaped}\\b`, 'i');
  if (!pattern.test(query)) return null;
  return query.replace(pattern, ' ').replace(/\s+/g, ' ').trim();
}

function when(hit) {
  return hit.recorded_start ? localTime(hit.recorded_start) : `at ${seconds(hit.start)}`;
}

// Each term once: the verdict, what was read (region, value, score; `detail`), and where it came from.
export function explanationText(item) {
  const score = item.score !== undefined && item.score !== null ? ` ${Math.round(item.score * 100)}%` : '';
  return item.detail || `${item.words || item.term}${score}`;
}

function explanation(hit) {
  return h('ul', { class: 'why' }, hit.explanation.map((item) => h('li', {
    class: item.matched === false ? 'miss' : 'hit',
    title: item.words ? `“${item.words}”` : '',
  },
  item.matched === false ? '✗ ' : '✓ ',
  explanationText(item),
  item.evidence ? h('span', { class: 'evidence' }, ` · ${item.evidence}`) : null)));
}

// One person's fragments grouped into this card: each segment plays on its own.
function segmentList(hit, ctx, onMoreLike) {
  if (!hit.segments || hit.segments.length < 2) return null;
  return h('ol', { class: 'segments small', 'aria-label': `${hit.segments.length} segments` },
    hit.segments.map((seg) => {
      const label = typeof seg.start === 'number' ? `${seconds(seg.start)}–${seconds(seg.end)}` : localTime(seg.start);
      const title = `${hit.label} on ${hit.camera}, segment ${label}`;
      return h('li', {}, h('button', {
        type: 'button', class: 'link small', dataset: { track: seg.track_id },
        onclick: () => openPlayer({
          kind: 'track', id: seg.track_id, title, canExport: ctx.can('export'), onMoreLike: () => onMoreLike(hit),
        }),
      }, label));
    }));
}

function resultCard(hit, ctx, onMoreLike) {
  const title = `${hit.label} on ${hit.camera}, ${when(hit)}`;
  const open = () => openPlayer({
    kind: 'track', id: hit.track_id, title, canExport: ctx.can('export'), onMoreLike: () => onMoreLike(hit),
  });
  return h('li', { class: 'result', dataset: { track: hit.track_id } },
    h('button', { type: 'button', class: 'thumb', onclick: open, 'aria-label': `Play ${title}` },
      hit.thumbnail_url
        ? h('img', { src: hit.thumbnail_url, alt: '', loading: 'lazy' })
        : h('span', { class: 'no-thumb' }, 'no picture'),
      h('span', { class: `badge ${hit.match}` }, hit.match === 'full' ? 'match' : 'partial')),
    h('div', { class: 'meta' },
      h('strong', {}, `${hit.label} · ${hit.camera}`),
      h('span', { class: 'muted small' }, when(hit)),
      hit.explanation.length ? explanation(hit) : null,
      segmentList(hit, ctx, onMoreLike),
      h('button', { type: 'button', class: 'link small', onclick: () => onMoreLike(hit) }, 'More like this')));
}

// "in red" is two terms (upper and lower body) from the same words: one chip, both regions named.
export function mergedChips(chips) {
  const out = [];
  for (const chip of chips) {
    const same = out.find((c) => c.kind === chip.kind && c.text === chip.text && !!c.negated === !!chip.negated);
    if (same && chip.facets) same.facets = [...(same.facets || []), ...chip.facets];
    else if (!same) out.push({ ...chip });
  }
  return out;
}

function chipKind(chip) {
  if (chip.kind !== 'attribute' || !chip.facets || !chip.facets.length) return CHIP_LABEL[chip.kind] || chip.kind;
  return [...new Set(chip.facets.map((f) => f.split(':')[0]))].join(' · ');
}

function chipList(result, query, rerun) {
  return h('ul', { class: 'chips', 'aria-label': 'How the search was understood' },
    mergedChips(result.chips).map((chip) => {
      const removable = !['not_analysed', 'unknown', 'corrected'].includes(chip.kind);
      return h('li', { class: `chip ${chip.kind}${chip.negated ? ' negated' : ''}` },
        h('span', { class: 'chip-kind' }, chipKind(chip)),
        ` ${chip.negated ? 'not ' : ''}${chip.text}${chip.only ? ' only' : ''}`,
        removable ? h('button', {
          type: 'button', class: 'chip-remove', 'aria-label': `Remove ${chip.text}`,
          onclick: () => {
            const next = withoutChip(query, chip);
            if (next === null) toast(`“${chip.text}” is implied by other words; edit the text to change it`);
            else rerun(next);
          },
        }, '×') : null);
    }));
}

export async function render(view, params, ctx) {
  const q = params.get('q') || '';
  const like = params.get('like');
  const camera = params.get('camera');
  const input = h('input', {
    type: 'search', name: 'q', value: q, maxlength: 500, required: true,
    placeholder: 'e.g. person in a red jacket with a backpack after 18:00', 'aria-label': 'Describe what to find',
  });
  const form = h('form', { class: 'search-box', role: 'search' }, input, h('button', { type: 'submit', class: 'primary' }, 'Search'));
  const out = h('section', { class: 'results', 'aria-label': 'Results' });
  view.append(
    h('h1', {}, 'Search footage'),
    form,
    h('p', { class: 'muted small' },
      'Describe clothing colours, headwear, carried items, posture, motion, vehicles, cameras and times. ',
      'Faces, sex, age and ethnicity are never analysed.'),
    out);
  const rerun = (text) => ctx.go('search', camera ? { q: text, camera } : { q: text });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.value.trim()) rerun(input.value.trim());
  });
  const moreLike = (hit) => ctx.go('search', { like: hit.track_id });

  if (!q && !like) {
    input.focus();
    return null;
  }
  out.append(h('p', { class: 'muted' }, 'Searching…'));
  let result;
  try {
    result = like
      ? await api(`/tracks/${encodeURIComponent(like)}/similar`, { query: { limit: 60 } })
      : await api('/search', { query: { q, camera, limit: 60 } });
  } catch (err) {
    out.replaceChildren(errorBox(err));
    return null;
  }
  const summary = like
    ? `${result.hits.length} ${result.hits.length === 1 ? 'person looks' : 'people look'} like track ${like}, most alike first`
    : `${result.hits.length} result${result.hits.length === 1 ? '' : 's'} for “${result.interpretation}”`;
  fill(out, 
    h('p', { class: 'summary', id: 'result-summary' }, summary),
    like ? null : chipList(result, q, rerun),
    like && result.reference ? h('div', { class: 'reference', 'aria-label': 'Compared with' },
      h('p', { class: 'small muted' }, 'Compared with:'),
      h('ul', { class: 'grid' }, resultCard(result.reference, ctx, moreLike))) : null,
    camera ? h('p', { class: 'small' }, `Only camera ${camera}. `,
      h('a', { href: `#/search?${new URLSearchParams({ q })}` }, 'Search every camera')) : null,
    ...(result.notes || []).map((note) => h('p', { class: 'muted small note' }, note)),
    result.hits.length
      ? h('ul', { class: 'grid' }, result.hits.map((hit) => resultCard(hit, ctx, moreLike)))
      : h('p', {}, 'Nothing found. Try fewer words, or another camera or time.'));
  return null;
}
