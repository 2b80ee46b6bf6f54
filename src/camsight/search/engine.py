"""The search engine: parsed query -> ranked, explained hits.

One library for the CLI and the API. Every hit says why it matched: the
score of each facet of the query, and whether it passed.
"""

from __future__ import annotations

import threading
import time as _time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from camsight.errors import CamsightError, NotFoundError
from camsight.records.facets import COLOURS, FACET_INDEX, VEHICLE_LABELS
from camsight.search.explain import explain_term, short_evidence, spoilers, thresholds
from camsight.search.grouping import GROUP_SLACK, TrackGroups, segment_time, similar_tracks
from camsight.search.hit_rows import HitRowReader
from camsight.search.index import EmbeddingIndex, FacetIndex, IndexCache
from camsight.search.nearest import NearestEmbeddings
from camsight.search.query import parse_query
from camsight.search.query_model import ParsedQuery, TimeOfDay
from camsight.store.db import Store
from camsight.store.models import Track
from camsight.vision.detections import CLASSES

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
    #: The tracks of this person (or object) on this camera grouped into this one result, in time
    #: order: ``{"track_id", "start", "end"}`` each (see :mod:`camsight.search.grouping`).
    segments: list[dict[str, Any]] = field(default_factory=list)

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
    #: "More like this": the track the results are compared with.
    reference: Hit | None = None
    #: Callers' renderings of this result (the API's JSON per page), kept with it: a kept
    #: result (:class:`RecentResults`) is answered again and again, and rendering it cost more
    #: than finding it. Not part of the result's value.
    renderings: dict[Hashable, bytes] = field(default_factory=dict, compare=False, repr=False)

    def parsed(self) -> dict[str, Any]:
        """How the query was understood, as plain data (``to_dict()["parsed"]`` without the hits)."""
        q = self.query
        return {
            "classes": list(q.classes),
            "terms": [
                {"facets": list(t.facets), "negated": t.negated, "words": t.words, "only": t.only}
                for t in q.terms
            ],
            "cameras": list(q.cameras),
            "since": q.since.isoformat() if q.since else None,
            "until": q.until.isoformat() if q.until else None,
            "time_of_day": [f"{q.time_of_day.start:%H:%M}", f"{q.time_of_day.end:%H:%M}"]
            if q.time_of_day
            else None,
            "not_analysed": list(q.not_analysed),
            "unknown": list(q.unknown),
            "corrections": list(q.corrections),
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
            **({"reference": self.reference.to_dict()} if self.reference is not None else {}),
        }


class SearchEngine:
    """Search one store. Keep one engine per process: it caches the index.

    >>> engine = SearchEngine(open_store())  # doctest: +SKIP
    >>> result = engine.search("person in a red jacket", limit=10)  # doctest: +SKIP
    >>> result.interpretation  # doctest: +SKIP
    'person · upper: red'
    """

    def __init__(
        self, store: Store, encoder: Any = None, embedding_weight: float = 0.3, result_cache: int = 256
    ) -> None:
        """``encoder``: an optional vision-language DualEncoder fused with the attributes;
        ``result_cache``: how many recent results to keep (:class:`RecentResults`; 0: none)."""
        self.store = store
        self.index_cache = IndexCache(store)
        self.encoder = encoder
        self.embedding_weight = embedding_weight
        #: One result per person: tracks grouped by re-id, time and place (cached per revision).
        self.groups = TrackGroups(store)
        #: Pick one track per group before building hits, so only returned hits are read and
        #: explained; False builds every ranked hit and then collapses them (the reference path
        #: the tests compare this one with: same hits, order, groups and explanations).
        self.group_before_hits = True
        #: Rows and pictures of hits, cached per index lineage.
        self.hit_rows = HitRowReader(store)
        #: Whole results of recent searches, per index revision (see :class:`RecentResults`).
        self.results = RecentResults(result_cache)

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
        if not query.analysable():
            # Gibberish, common words only, or only words camsight does not analyse: nothing
            # to match on, so nothing matches (listing every track as a match would mislead).
            return SearchResult(
                query=query,
                interpretation=query.describe(),
                hits=[],
                candidates=0,
                full_matches=0,
                seconds=_time.perf_counter() - started,
                notes=[_nothing_to_search(query)],
            )
        overrides: dict[str, Any] = {}
        if cameras:
            overrides["cameras"] = tuple(cameras)
        if since is not None:
            overrides["since"] = since
        if until is not None:
            overrides["until"] = until
        if classes:
            overrides["classes"] = _expand_classes(classes)
        # Time words ("yesterday", "after 18:00") read against the clock: such a search is never reused.
        timeless = query.since is None and query.until is None and query.time_of_day is None
        if overrides:
            query = replace(query, **overrides)
        key = None
        if timeless and query_vector is None and self.encoder is None and self.results.size:
            key = (query, limit, index.revision, index.lineage)
            cached = self.results.get(key)
            if cached is not None:
                return replace(cached, seconds=_time.perf_counter() - started)
            if not self.results.lead(key):
                # The same search is running in another thread: its answer is this one's.
                cached = self.results.wait(key)
                if cached is not None:
                    return replace(cached, seconds=_time.perf_counter() - started)
                key = None  # it failed: search here, and keep nothing
        try:
            result = self._search_parsed(query, text, limit, index, query_vector, embedding_model)
            result.seconds = _time.perf_counter() - started
            if key is not None:
                self.results.put(key, result)
        finally:
            if key is not None:
                self.results.done(key)  # after put: those waiting read the result
        return result

    def _search_parsed(
        self,
        query: ParsedQuery,
        text: str,
        limit: int,
        index: FacetIndex,
        query_vector: np.ndarray | None,
        embedding_model: str | None,
    ) -> SearchResult:
        """:meth:`search` once the query is parsed: the visual part, then :meth:`run`."""
        if query_vector is None and self.encoder is not None:
            query_vector = self.encoder.embed_texts([text])[0]
            embedding_model = self.encoder.name
        visual = None
        if query_vector is not None and embedding_model:
            # PostgreSQL: nearest-neighbour queries where they rank alike (search.nearest).
            emb: EmbeddingIndex | NearestEmbeddings = (
                NearestEmbeddings(self.index_cache, embedding_model)
                if self.store.engine.dialect.name == "postgresql"
                else self.index_cache.embeddings(embedding_model)
            )
            visual = (emb, query_vector)
        return self.run(query, limit=limit, index=index, visual=visual)

    def run(
        self,
        query: ParsedQuery,
        *,
        limit: int = 20,
        index: FacetIndex | None = None,
        visual: tuple[EmbeddingIndex | NearestEmbeddings, np.ndarray] | None = None,
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
            scored = [self._term_scores(index, t, candidates) for t in terms]
            scores = np.stack([s for s, _, _, _ in scored])
            matched = np.stack([m for _, m, _, _ in scored])
            ranking = np.stack([r for _, _, r, _ in scored])
            unsure = np.stack([u for _, _, _, u in scored])
            n_matched = matched.sum(axis=0)
            combined = ranking.mean(axis=0)
            # A track where no term holds but one is unsure is still a candidate, listed after
            # every track where a term holds: a weak model (a bag on a 70 px person) ranks
            # people, even where it cannot decide; an empty list would hide them all.
            keep = (n_matched > 0) | unsure.any(axis=0)
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
            ids = index.track_ids[candidates]
            if isinstance(emb, NearestEmbeddings):
                # Ranked by similarity alone, the hits come from the limit * GROUP_SLACK nearest.
                k = limit * GROUP_SLACK
                similarity = emb.scores(ids, qvec, parsed=query, camera_ids=index.camera_names, k=k)
            else:
                similarity = emb.scores(ids, qvec)
            has = ~np.isnan(similarity)
            if has.any():
                lo, hi = float(np.nanmin(similarity)), float(np.nanmax(similarity))
                floor = getattr(emb, "floor", None)
                lo = lo if floor is None else min(lo, floor)  # the nearest only: the farthest from the index
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
        # A person's fragments collapse into one hit: rank more tracks than hits wanted.
        order = np.lexsort((-combined, -n_matched, ~full))[: limit * GROUP_SLACK]

        def scored(i: int) -> tuple[list[dict], float, bool]:
            """Row ``i`` of the candidates' explanation, score and whether it fully matched."""
            explanation = [
                {
                    "term": t.label(),
                    "words": t.words,
                    "score": round(float(scores[j, i]), 3),
                    "matched": bool(matched[j, i]),
                    **explain_term(t, _facet_scores(index, t, candidates[i]), bool(matched[j, i])),
                }
                for j, t in enumerate(terms)
            ]
            if similarity is not None and not np.isnan(similarity[i]):
                explanation.append(
                    {
                        "term": "visual similarity",
                        "words": query.text,
                        "score": round(float(similarity[i]), 3),
                        "matched": None,
                    }
                )
            score = float(combined[i]) if len(terms) or similarity is not None else 1.0
            return explanation, score, bool(full[i])

        hits: list[Hit] | None = None
        if self.group_before_hits:
            # One track per group first, then hits (rows read, explanations built) for those only.
            chosen = order[self.groups.first_of_groups(candidates[order], index, limit)]
            known: dict[int, tuple[float, float | str, float | str]] = {}
            picked = index.track_ids[candidates[chosen]]
            hits = self._hits(picked, [scored(i) for i in chosen], query, known, lineage=index.lineage)
            if len(hits) == len(chosen):
                hits = self.groups.collapse(hits, index, known)
            else:
                hits = None  # a track was deleted after indexing: its group's next track stands in
        if hits is None:
            picked = index.track_ids[candidates[order]]
            hits = self._hits(picked, [scored(i) for i in order], query, lineage=index.lineage)
            hits = self.groups.collapse(hits, index)[:limit]
        if len(terms) and any(not any(e.get("matched") for e in h.explanation) for h in hits):
            notes.append(
                "listed last, closest first: tracks where no term holds but the evidence is "
                "unsure, not absent"
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
            full_matches=self.groups.count_rows(candidates[full], index),
            notes=notes,
        )

    def more_like(self, track_id: int, *, same_camera: bool = False, limit: int = 20) -> SearchResult:
        """People (or objects) that look like ``track_id``, one result each, most alike first.

        By re-id vector when the track has one, else by colour descriptor; only those above the
        vector's cut-off. The reference (``result.reference``) lists its own grouped segments.
        """
        started = _time.perf_counter()
        _check_limit(limit)
        with self.store.engine.connect() as connection:
            label = connection.execute(select(Track.label).where(Track.id == track_id)).scalar_one_or_none()
        if label is None:
            raise NotFoundError(f"no track with id {track_id}")
        index = self.index_cache.get()
        own_hit = self._hits(np.array([track_id]), [([], 1.0, True)], None, lineage=index.lineage)
        reference = self.groups.collapse(own_hit, index)
        own = {s["track_id"] for s in reference[0].segments} if reference else {track_id}
        # As many look-alikes as the hits can use, plus the reference's fragments dropped below:
        # on PostgreSQL that is the k of a nearest-neighbour query, not a scan of every track.
        wanted = limit * GROUP_SLACK + len(own)
        found = similar_tracks(self.store, track_id, same_camera=same_camera, limit=wanted)
        if found is None:
            raise SearchError(f"track {track_id} has no appearance descriptor to compare")
        # The reference's own fragments are the same person, shown with it, not as look-alikes.
        keep = [i for i, t in enumerate(found.track_ids) if int(t) not in own][: limit * GROUP_SLACK]
        what = "appearance (re-id)" if found.model != "colour" else "appearance (clothing/body colours)"
        hits = self._hits(
            found.track_ids[keep],
            [
                (
                    [
                        {
                            "term": what,
                            "words": f"like track {track_id}",
                            "score": round(float(found.scores[i]), 3),
                            "matched": True,
                        }
                    ],
                    float(found.scores[i]),
                    True,
                )
                for i in keep
            ],
            None,
            lineage=index.lineage,
        )
        hits = self.groups.collapse(hits, index)[:limit]
        group = VEHICLE_LABELS if label in VEHICLE_LABELS else (label,)
        return SearchResult(
            query=ParsedQuery(text=f"like track {track_id}", classes=group),
            interpretation=f"{label} · looks like track {track_id} ({what})",
            hits=hits,
            candidates=found.candidates,
            full_matches=len(hits),
            seconds=_time.perf_counter() - started,
            notes=[f"{what} similarity at least {found.cutoff:.2f}; one result per person and camera"],
            reference=reference[0] if reference else None,
        )

    # -- internals --------------------------------------------------------

    def _mask(self, index: FacetIndex, query: ParsedQuery) -> np.ndarray:
        mask = np.ones(len(index), bool)
        if query.classes:
            # A look-up table per class code: np.isin sorted the whole column on every search.
            # One spare entry at the end: code -1 (a label outside CLASSES) reads it, False.
            wanted = np.zeros(len(CLASSES) + 1, bool)
            wanted[[CLASSES.index(c) for c in query.classes if c in CLASSES]] = True
            mask &= wanted[index.labels]
        if query.cameras:
            unknown = [c for c in query.cameras if c not in index.camera_names]
            if unknown:
                known = ", ".join(sorted(index.camera_names)) or "none yet"
                raise NotFoundError(f"no camera named {unknown[0]!r} (known cameras: {known})")
            ids = [index.camera_names[c] for c in query.cameras]
            allowed = np.zeros(max(max(ids), int(index.camera_ids.max(initial=0))) + 1, bool)
            allowed[ids] = True
            mask &= allowed[index.camera_ids]
        with np.errstate(invalid="ignore"):
            if query.since is not None:
                mask &= index.end_at >= query.since.timestamp()
            if query.until is not None:
                mask &= index.start_at <= query.until.timestamp()
            if query.time_of_day is not None:
                mask &= _overlaps_daily(index.start_at, index.end_at, query.time_of_day)
        return mask

    @staticmethod
    def _term_scores(
        index: FacetIndex, term: Any, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(support, holds, rank, unsure)`` per row: the term's score, whether it holds, its
        rank key, and whether the evidence is unsure (neither holds nor clearly fails).

        A term holds when one of its facets reaches its calibrated "present" threshold; a
        negated term only when every facet is at or under its "absent" threshold
        (:mod:`camsight.search.explain`): unsure evidence, between the two, makes neither a
        match nor a clear miss. ``rank`` orders hits: a colour that is the only one of its
        region ranks above the same score shared with another colour (black trousers before
        black-and-blue jeans).
        """
        keys = [f for f in term.facets if f in FACET_INDEX]
        if not keys:  # a facet this store does not have cannot be evidenced, either way
            zeros = np.zeros(len(rows), np.float32)
            return zeros, np.zeros(len(rows), bool), zeros, np.zeros(len(rows), bool)
        raw = index.facets[[FACET_INDEX[f] for f in keys]][:, rows].astype(np.float32) / 255.0
        present, absent = thresholds(keys)
        if term.negated:
            support = 1.0 - raw.max(axis=0)
            holds = (raw <= absent[:, None] + 1e-6).all(axis=0)
            return support, holds, support, ~holds & (raw < present[:, None] - 1e-6).all(axis=0)
        purity = np.stack([_colour_share(index, f, rows) for f in keys])
        rank = (raw * (0.5 + 0.5 * purity)).max(axis=0)
        holds = (raw >= present[:, None] - 1e-6).any(axis=0)
        unsure = ~holds & (raw > absent[:, None] + 1e-6).any(axis=0)
        others = [f for f in spoilers(term) if f in FACET_INDEX]
        if others:
            # "All in black" with another colour clearly seen too is not a match, but unsure, not
            # a clear miss: a navy jacket reads partly black, and black partly navy.
            other = index.facets[[FACET_INDEX[f] for f in others]][:, rows].astype(np.float32) / 255.0
            spoilt = holds & (other >= thresholds(others)[0][:, None] - 1e-6).any(axis=0)
            holds &= ~spoilt
            unsure |= spoilt
        return raw.max(axis=0), holds, rank, unsure

    def _hits(
        self,
        track_ids: np.ndarray,
        scored: list[tuple[list[dict], float, bool]],
        query: ParsedQuery | None,
        times: dict[int, tuple[float, float | str, float | str]] | None = None,
        *,
        lineage: int | None = None,
    ) -> list[Hit]:
        """Hits of ``track_ids`` (skipping tracks deleted since indexing); fills ``times`` with
        each track's :func:`~camsight.search.grouping.segment_time`, so grouping need not read it again.
        ``lineage``: the index the ids come from (rows are cached per lineage, see :mod:`.hit_rows`)."""
        if len(track_ids) == 0:
            return []
        ids = [int(t) for t in track_ids]
        rows = self.hit_rows.read(ids, lineage=lineage)
        hits = []
        for tid, (explanation, score, full) in zip(ids, scored, strict=True):
            if tid not in rows:  # deleted since the index was built
                continue
            found = rows[tid]
            track = found.track
            live = track.camera_kind == "live"
            if times is not None:
                times[tid] = segment_time(
                    track.start_t, track.end_t, track.start_at, track.end_at, track.camera_kind
                )
            evidence = (track.attributes or {}).get("evidence", {})
            # Explanations of a query search follow its terms, in order. The evidence says where
            # the deciding facet's score came from, not the facet and score again.
            for item in explanation:
                facet = item.get("facet")
                if isinstance(facet, str) and facet in evidence:
                    item["evidence"] = short_evidence(facet, evidence[facet])
            th = found.thumbnail
            if th is not None:
                frame, box = th.frame, [round(v, 1) for v in (th.x1, th.y1, th.x2, th.y2)]
                thumb_path: str | None = str(self.store.media / th.path)
            elif found.middle is not None:
                o = found.middle
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


class RecentResults:
    """The results of recent searches, each valid for the index revision it was made on.

    Search engines keep a request cache for the queries a busy server answers again and again
    (several people on the same saved search, a page 2 that re-runs page 1's query). A result
    depends only on the parsed query, the limit and the tracks (the index revision: any stored,
    changed or deleted track makes a new one), so one made on the current revision is exactly what
    searching again would give. Searches with time words, or a vision-language encoder, are not
    kept. Callers treat results (and their hits) as read-only. ``size=0`` keeps nothing.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._results: OrderedDict[Hashable, SearchResult] = OrderedDict()
        self._lock = threading.Lock()
        #: Searches being made, so that the same search asked meanwhile waits for it: when new
        #: tracks come in, 30 clients asking the same thing would otherwise all search at once.
        self._running: dict[Hashable, threading.Event] = {}

    def lead(self, key: Hashable) -> bool:
        """True: make this search (then call :meth:`done`); False: another thread is making it."""
        with self._lock:
            if key in self._running:
                return False
            self._running[key] = threading.Event()
            return True

    def wait(self, key: Hashable, timeout: float = 60.0) -> SearchResult | None:
        """Wait for the thread making this search; its result (None if it failed or kept nothing)."""
        with self._lock:
            running = self._running.get(key)
        if running is not None:
            running.wait(timeout)
        return self.get(key)

    def done(self, key: Hashable) -> None:
        """The search of :meth:`lead` is over (kept with :meth:`put` first, or failed)."""
        with self._lock:
            running = self._running.pop(key, None)
        if running is not None:
            running.set()

    def get(self, key: Hashable) -> SearchResult | None:
        with self._lock:
            found = self._results.get(key)
            if found is not None:
                self._results.move_to_end(key)
            return found

    def put(self, key: Hashable, result: SearchResult) -> None:
        if not self.size:
            return
        with self._lock:
            self._results[key] = result
            while len(self._results) > self.size:
                self._results.popitem(last=False)


def _colour_share(index: FacetIndex, facet: str, rows: np.ndarray) -> np.ndarray:
    """A colour facet's share of its region's colour scores (1 for facets that are no colour)."""
    share = np.ones(len(rows), np.float32)
    region, _, value = facet.partition(":")
    if value not in COLOURS:
        return share
    own = index.facets[FACET_INDEX[facet]].take(rows)
    seen = np.flatnonzero(own)  # only tracks with the colour: the rest rank 0 whatever their share
    picked = rows[seen]
    total = np.zeros(len(picked), np.uint16)  # 11 colours x 255 fits
    for key in (f"{region}:{c}" for c in COLOURS):
        if key in FACET_INDEX:
            # Row by row (each contiguous): several times faster than one 2-d fancy index.
            total += index.facets[FACET_INDEX[key]].take(picked)
    share[seen] = own[seen] / np.maximum(total, 1).astype(np.float32)
    return share


def _facet_scores(index: FacetIndex, term: Any, row: int) -> dict[str, float]:
    """One track's scores of a term's facets (those the index has), and of the colours that
    would spoil an *only* term (:func:`~camsight.search.explain.spoilers`)."""
    keys = (*term.facets, *spoilers(term))
    return {f: float(index.facets[FACET_INDEX[f], row]) / 255.0 for f in keys if f in FACET_INDEX}


def _nothing_to_search(query: ParsedQuery) -> str:
    """Why a query with no analysable word finds nothing, in one sentence."""
    if query.unknown:
        why = "none of its words was understood (" + ", ".join(query.unknown) + ")"
    elif query.not_analysed:
        why = "camsight does not analyse " + ", ".join(query.not_analysed)
    else:
        why = "it has only common words (" + ", ".join(query.ignored) + ")"
    return (
        f"nothing matches: {why}; describe clothing colours, headwear, carried items, posture, "
        "motion, a vehicle, a camera or a time"
    )


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
