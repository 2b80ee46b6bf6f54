"""The search engine: parsed query -> ranked, explained hits.

One library for the CLI and the API. Every hit says why it matched: the
score of each facet of the query, and whether it passed.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from camsight.errors import CamsightError, NotFoundError
from camsight.records.facets import FACET_INDEX, VEHICLE_LABELS
from camsight.search.index import EmbeddingIndex, FacetIndex, IndexCache
from camsight.search.query import parse_query
from camsight.search.query_model import ParsedQuery, TimeOfDay
from camsight.store.db import Store
from camsight.store.models import Camera, ObservationRow, Source, Thumbnail, Track
from camsight.vision.detections import CLASSES

#: A facet score at or above this counts as "the track has it".
MATCH_THRESHOLD = 0.5
MAX_LIMIT = 1000
_DAY = 86400.0


class SearchError(CamsightError):
    """A search request that cannot be answered as asked."""


@dataclass
class Hit:
    """One matching track.

    ``start``/``end`` are seconds from the start of the source for files and
    ISO timestamps for live cameras; ``frame`` is the 1-based index of the
    best frame in the source file and ``box`` the track's box in it.
    """

    track_id: int
    camera: str
    label: str
    start: float | str
    end: float | str
    frame: int | None
    box: list[float] | None
    score: float
    match: str  # "full" or "partial"
    explanation: list[dict[str, Any]]
    thumbnail: str | None
    source: str
    recorded_start: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResult:
    """Hits plus how the query was understood."""

    query: ParsedQuery
    interpretation: str
    hits: list[Hit]
    candidates: int
    full_matches: int
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def parsed(self) -> dict[str, Any]:
        """How the query was understood, as plain data (``to_dict()["parsed"]`` without the hits)."""
        q = self.query
        return {
            "classes": list(q.classes),
            "terms": [{"facets": list(t.facets), "negated": t.negated, "words": t.words} for t in q.terms],
            "cameras": list(q.cameras),
            "since": q.since.isoformat() if q.since else None,
            "until": q.until.isoformat() if q.until else None,
            "time_of_day": [f"{q.time_of_day.start:%H:%M}", f"{q.time_of_day.end:%H:%M}"]
            if q.time_of_day
            else None,
            "not_analysed": list(q.not_analysed),
            "unknown": list(q.unknown),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query.text,
            "interpretation": self.interpretation,
            "parsed": self.parsed(),
            "candidates": self.candidates,
            "full_matches": self.full_matches,
            "notes": self.notes,
            "hits": [h.to_dict() for h in self.hits],
        }


class SearchEngine:
    """Search one store. Keep one engine per process: it caches the index.

    >>> engine = SearchEngine(open_store())  # doctest: +SKIP
    >>> result = engine.search("person in a red jacket", limit=10)  # doctest: +SKIP
    >>> result.interpretation  # doctest: +SKIP
    'person · upper: red'
    """

    def __init__(self, store: Store, encoder: Any = None, embedding_weight: float = 0.3) -> None:
        """``encoder``: an optional vision-language DualEncoder fused with the attributes."""
        self.store = store
        self.index_cache = IndexCache(store)
        self.encoder = encoder
        self.embedding_weight = embedding_weight

    # -- public API -------------------------------------------------------

    def search(
        self,
        text: str,
        *,
        cameras: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        classes: Sequence[str] = (),
        limit: int = 20,
        now: datetime | None = None,
        query_vector: np.ndarray | None = None,
        embedding_model: str | None = None,
        known_cameras: Sequence[str] | None = None,
    ) -> SearchResult:
        """Parse ``text`` and search; explicit filters replace what the text said.

        With a vision-language encoder (or a ready ``query_vector`` from
        ``embedding_model``), visual similarity of each track's best crop to
        the text is fused with the attribute score. ``known_cameras`` are the
        camera names the text may name (default: every indexed camera); a
        caller limited to some cameras passes those, so another camera's name
        reads as a word not understood, exactly like a name that does not exist.
        """
        started = _time.perf_counter()
        index = self.index_cache.get()
        names = list(index.camera_names) if known_cameras is None else list(known_cameras)
        query = parse_query(text, now=now, cameras=names)
        overrides: dict[str, Any] = {}
        if cameras:
            overrides["cameras"] = tuple(cameras)
        if since is not None:
            overrides["since"] = since
        if until is not None:
            overrides["until"] = until
        if classes:
            overrides["classes"] = _expand_classes(classes)
        if overrides:
            query = replace(query, **overrides)
        if query_vector is None and self.encoder is not None:
            query_vector = self.encoder.embed_texts([text])[0]
            embedding_model = self.encoder.name
        visual = None
        if query_vector is not None and embedding_model:
            visual = (self.index_cache.embeddings(embedding_model), query_vector)
        result = self.run(query, limit=limit, index=index, visual=visual)
        result.seconds = _time.perf_counter() - started
        return result

    def run(
        self,
        query: ParsedQuery,
        *,
        limit: int = 20,
        index: FacetIndex | None = None,
        visual: tuple[EmbeddingIndex, np.ndarray] | None = None,
    ) -> SearchResult:
        """Search with an already parsed (or hand-built) query."""
        _check_limit(limit)
        index = index or self.index_cache.get()
        if query.since and query.until and query.since > query.until:
            raise SearchError(
                f"the time range is empty: since {query.since:%Y-%m-%d %H:%M} is after "
                f"until {query.until:%Y-%m-%d %H:%M}"
            )
        candidates = np.flatnonzero(self._mask(index, query))
        terms = query.terms
        notes: list[str] = []
        if len(terms):
            scores = np.stack([self._term_scores(index, t, candidates) for t in terms])
            matched = scores >= MATCH_THRESHOLD
            n_matched = matched.sum(axis=0)
            combined = scores.mean(axis=0)
            keep = n_matched > 0
            candidates, scores, matched, n_matched, combined = (
                candidates[keep],
                scores[:, keep],
                matched[:, keep],
                n_matched[keep],
                combined[keep],
            )
        else:
            scores = np.zeros((0, len(candidates)), np.float32)
            matched = np.zeros((0, len(candidates)), bool)
            n_matched = np.zeros(len(candidates), int)
            # Nothing to weigh: newest first, the order a VMS user expects.
            start = index.start_at[candidates]
            combined = np.nan_to_num(start - np.nanmin(start), nan=0.0) if len(start) else start
        similarity = None
        if visual is not None and len(candidates):
            emb, qvec = visual
            similarity = emb.scores(index.track_ids[candidates], qvec)
            has = ~np.isnan(similarity)
            if has.any():
                lo, hi = float(np.nanmin(similarity)), float(np.nanmax(similarity))
                # Cosine ranges differ per model and query: rescale to [0, 1]
                # over the candidates before mixing with attribute scores.
                rel = np.where(has, (similarity - lo) / (hi - lo if hi > lo else 1.0), 0.0)
                if len(terms):
                    w = self.embedding_weight
                    combined = np.where(has, (1 - w) * combined + w * rel, combined)
                else:
                    combined = rel
                    keep = has
                    candidates, combined, n_matched, similarity = (
                        candidates[keep],
                        combined[keep],
                        n_matched[keep],
                        similarity[keep],
                    )
                    scores, matched = scores[:, keep], matched[:, keep]

        if visual is not None:
            notes.append(f"visual similarity from {visual[0].model} fused with the attribute scores")
        full = n_matched == len(terms)
        # Full matches first, then by how many facets match, then by confidence.
        order = np.lexsort((-combined, -n_matched, ~full))[:limit]
        hits = self._hits(
            index.track_ids[candidates[order]],
            [
                (
                    [
                        {
                            "term": t.label(),
                            "words": t.words,
                            "score": round(float(scores[j, i]), 3),
                            "matched": bool(matched[j, i]),
                        }
                        for j, t in enumerate(terms)
                    ],
                    float(combined[i]) if len(terms) or similarity is not None else 1.0,
                    bool(full[i]),
                )
                for i in order
            ],
            query,
        )
        if similarity is not None:
            position = {int(index.track_ids[candidates[i]]): i for i in order}
            for hit in hits:
                i = position[hit.track_id]
                if not np.isnan(similarity[i]):
                    hit.explanation.append(
                        {
                            "term": "visual similarity",
                            "words": query.text,
                            "score": round(float(similarity[i]), 3),
                            "matched": None,
                        }
                    )
        if query.not_analysed:
            notes.append(
                "not analysed (camsight does not compute these, so they did not change the results): "
                + ", ".join(query.not_analysed)
            )
        if query.unknown:
            notes.append("not understood, ignored: " + ", ".join(query.unknown))
        return SearchResult(
            query=query,
            interpretation=query.describe(),
            hits=hits,
            candidates=len(candidates),
            full_matches=int(full.sum()),
            notes=notes,
        )

    def more_like(self, track_id: int, *, same_camera: bool = False, limit: int = 20) -> SearchResult:
        """Tracks whose colour appearance is closest to ``track_id``'s."""
        started = _time.perf_counter()
        _check_limit(limit)
        with self.store.session() as session:
            track = session.get(Track, track_id)
            if track is None:
                raise NotFoundError(f"no track with id {track_id}")
            if track.appearance is None:
                raise SearchError(f"track {track_id} has no appearance descriptor to compare")
            group = VEHICLE_LABELS if track.label in VEHICLE_LABELS else (track.label,)
            query = select(Track.id, Track.appearance).where(
                Track.label.in_(group), Track.id != track_id, Track.appearance.is_not(None)
            )
            if same_camera:
                query = query.where(Track.camera_id == track.camera_id)
            rows = session.execute(query).all()
            target = np.frombuffer(track.appearance, "<f4")
            label = track.label
        width = len(target)
        rows = [r for r in rows if len(r[1]) == width * 4]  # descriptors of another size are not comparable
        ids = np.array([r[0] for r in rows], np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), "<f4").reshape(-1, width)
        sims = vectors @ target
        order = np.argsort(-sims)[:limit]
        hits = self._hits(
            ids[order],
            [
                (
                    [
                        {
                            "term": "appearance",
                            "words": f"like track {track_id}",
                            "score": round(float(sims[i]), 3),
                            "matched": bool(sims[i] >= 0.8),
                        }
                    ],
                    float(sims[i]),
                    bool(sims[i] >= 0.8),
                )
                for i in order
            ],
            None,
        )
        parsed = ParsedQuery(text=f"like track {track_id}", classes=group)
        return SearchResult(
            query=parsed,
            interpretation=f"{label} · looks like track {track_id} (clothing/body colours)",
            hits=hits,
            candidates=len(ids),
            full_matches=int((sims >= 0.8).sum()),
            seconds=_time.perf_counter() - started,
        )

    # -- internals --------------------------------------------------------

    def _mask(self, index: FacetIndex, query: ParsedQuery) -> np.ndarray:
        mask = np.ones(len(index), bool)
        if query.classes:
            codes = [CLASSES.index(c) for c in query.classes if c in CLASSES]
            mask &= np.isin(index.labels, codes)
        if query.cameras:
            unknown = [c for c in query.cameras if c not in index.camera_names]
            if unknown:
                known = ", ".join(sorted(index.camera_names)) or "none yet"
                raise NotFoundError(f"no camera named {unknown[0]!r} (known cameras: {known})")
            mask &= np.isin(index.camera_ids, [index.camera_names[c] for c in query.cameras])
        with np.errstate(invalid="ignore"):
            if query.since is not None:
                mask &= index.end_at >= query.since.timestamp()
            if query.until is not None:
                mask &= index.start_at <= query.until.timestamp()
            if query.time_of_day is not None:
                mask &= _overlaps_daily(index.start_at, index.end_at, query.time_of_day)
        return mask

    @staticmethod
    def _term_scores(index: FacetIndex, term: Any, rows: np.ndarray) -> np.ndarray:
        cols = [FACET_INDEX[f] for f in term.facets if f in FACET_INDEX]
        if not cols:
            return np.zeros(len(rows), np.float32)
        best = index.facets[cols][:, rows].max(axis=0).astype(np.float32) / 255.0
        return 1.0 - best if term.negated else best

    def _hits(
        self, track_ids: np.ndarray, scored: list[tuple[list[dict], float, bool]], query: ParsedQuery | None
    ) -> list[Hit]:
        if len(track_ids) == 0:
            return []
        ids = [int(t) for t in track_ids]
        # Read-only: a plain session (no transaction to commit) keeps a busy server off the write path.
        with self.store.sessions() as session:
            # Columns, not ORM objects: building three entities per hit was a large part of a
            # search's CPU time under load, and nothing here changes them.
            rows = {
                row.id: row
                for row in session.execute(
                    select(
                        Track.id,
                        Track.label,
                        Track.start_t,
                        Track.end_t,
                        Track.start_at,
                        Track.end_at,
                        Track.attributes,
                        Camera.name.label("camera"),
                        Camera.kind.label("camera_kind"),
                        Source.uri,
                    )
                    .join(Camera, Track.camera_id == Camera.id)
                    .join(Source, Track.source_id == Source.id)
                    .where(Track.id.in_(ids))
                ).all()
            }
            thumbs = {
                th.track_id: th
                for th in session.scalars(
                    select(Thumbnail).where(Thumbnail.track_id.in_(ids), Thumbnail.rank == 0)
                )
            }
            middle = _middle_observations(session, [i for i in ids if i not in thumbs])
        hits = []
        for tid, (explanation, score, full) in zip(ids, scored, strict=True):
            if tid not in rows:  # deleted since the index was built
                continue
            track = rows[tid]
            live = track.camera_kind == "live"
            evidence = (track.attributes or {}).get("evidence", {})
            # Explanations of a query search follow its terms, in order.
            for item, term in zip(explanation, query.terms if query else (), strict=False):
                ev = [evidence[f] for f in term.facets if f in evidence]
                if ev:
                    item["evidence"] = "; ".join(ev)
            th = thumbs.get(tid)
            if th is not None:
                frame, box = th.frame, [round(v, 1) for v in (th.x1, th.y1, th.x2, th.y2)]
                thumb_path: str | None = str(self.store.media / th.path)
            elif tid in middle:
                o = middle[tid]
                frame, box, thumb_path = o.frame, [round(v, 1) for v in (o.x1, o.y1, o.x2, o.y2)], None
            else:
                frame, box, thumb_path = None, None, None
            hits.append(
                Hit(
                    track_id=tid,
                    camera=track.camera,
                    label=track.label,
                    start=track.start_at.isoformat() if live and track.start_at else round(track.start_t, 3),
                    end=track.end_at.isoformat() if live and track.end_at else round(track.end_t, 3),
                    frame=None if live else frame,
                    box=box,
                    score=round(score, 4),
                    match="full" if full else "partial",
                    explanation=explanation,
                    thumbnail=thumb_path,
                    source=track.uri if not live else Path(track.uri).name,
                    recorded_start=track.start_at.isoformat() if track.start_at else None,
                )
            )
        return hits


def _middle_observations(session: Session, track_ids: list[int]) -> dict[int, Any]:
    """The middle observation (by frame) of each track, for hits without a thumbnail, in one query.

    One windowed query rather than one per track loading all its observations: a page of
    50 such hits was 50 queries and most of a search's time under load.
    """
    if not track_ids:
        return {}
    ranked = (
        select(
            ObservationRow.track_id,
            ObservationRow.frame,
            ObservationRow.x1,
            ObservationRow.y1,
            ObservationRow.x2,
            ObservationRow.y2,
            func.row_number()
            .over(partition_by=ObservationRow.track_id, order_by=ObservationRow.frame)
            .label("rn"),
            func.count().over(partition_by=ObservationRow.track_id).label("n"),
        )
        .where(ObservationRow.track_id.in_(track_ids))
        .subquery()
    )
    # Row n // 2 + 1 (1-based) is element n // 2 of the frame-ordered list, as before.
    found = session.execute(select(ranked).where(ranked.c.rn == ranked.c.n // 2 + 1)).all()
    return {row.track_id: row for row in found}


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")


def _expand_classes(classes: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for c in classes:
        c = c.strip().lower()
        if c in ("vehicle", "vehicles"):
            out += VEHICLE_LABELS
        elif c in ("van", "van/truck"):
            out.append("truck")
        elif c in CLASSES:
            out.append(c)
        else:
            raise SearchError(f"unknown class {c!r}: choose from {', '.join((*CLASSES, 'vehicle', 'van'))}")
    return tuple(dict.fromkeys(out))


def _overlaps_daily(start: np.ndarray, end: np.ndarray, window: TimeOfDay) -> np.ndarray:
    """Whether each [start, end] (epoch seconds) overlaps a daily local-time window."""
    offset = datetime.now().astimezone().utcoffset()
    off = offset.total_seconds() if offset else 0.0
    ws = window.start.hour * 3600 + window.start.minute * 60 + window.start.second
    we = window.end.hour * 3600 + window.end.minute * 60 + window.end.second
    length = (we - ws) % _DAY or _DAY
    tod = np.mod(start + off, _DAY)
    duration = np.maximum(end - start, 0)
    return (np.mod(tod - ws, _DAY) < length) | (np.mod(ws - tod, _DAY) <= duration)
