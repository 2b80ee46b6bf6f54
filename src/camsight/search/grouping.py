"""One search result per person: a person's consecutive tracks on one camera, grouped.

A tracker loses people (occlusion, a missed detection, leaving and coming
back), so one person is often several tracks. Tracks are linked into a chain
when, on the same camera and of the same kind of object, one starts within
:attr:`GroupingSettings.window` seconds after the other ends and

- they look alike by the re-identification vector (``person-reidentification-
  retail-0288``) above :attr:`GroupingSettings.reid_near` and the second starts
  where the first could have walked to, or above :attr:`GroupingSettings.reid_far`
  wherever it starts (a re-entry by another door);
- or, without re-id vectors, their colour descriptors are above
  :attr:`GroupingSettings.colour_near` and the positions fit.

Each track has at most one predecessor and one successor; the most similar
pairs are linked first. Thresholds were calibrated on PETS09 (``bench/grouping_eval.py``).

>>> v = np.array([1.0, 0.0], np.float32)
>>> a = TrackInfo(1, "cam", "person", 0.0, 4.0, (0, 0, 10, 40), (50, 0, 60, 40), v, None)
>>> b = TrackInfo(2, "cam", "person", 5.0, 9.0, (55, 0, 65, 40), (90, 0, 100, 40), v, None)
>>> group_tracks([a, b])
{1: 1, 2: 1}
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select

from camsight.records.facets import VEHICLE_LABELS
from camsight.search.hit_rows import LineageCache
from camsight.store.db import Store
from camsight.store.models import Camera, ObservationRow, Track, TrackEmbedding
from camsight.store.vectors import appearance_column, embedding_column, nearest

#: The re-id model whose vectors link tracks (``track_embeddings.model``).
REID_MODEL = "person-reidentification-retail-0288"
#: Tracks ranked per hit wanted: a person's fragments collapse into one hit.
GROUP_SLACK = 3
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class GroupingSettings:
    """When two tracks are one object (see the module docstring); calibrated on PETS09."""

    #: Longest gap (seconds) between one track's end and the next one's start.
    window: float = 60.0
    #: Overlap allowed (seconds): the tracker may start a new id a frame before dropping the old.
    overlap: float = 0.5
    #: Box heights an object may be from where it was last seen, plus ``speed`` heights a second of
    #: gap, up to ``max_reach``: after a long gap a person can be anywhere, and position says nothing
    #: unless they are back at the very spot (within ``reach``). Beyond ``max_reach`` a large person
    #: (Intel's one-by-one clip, 300 px in a 432 px picture) would be "near" anywhere: two men in black
    #: 30 s apart and 1.4 heights away (re-id 0.82) were one result.
    reach: float = 1.0
    speed: float = 1.5
    max_reach: float = 3.0
    #: Re-id cosine similarity that links nearby tracks, and tracks anywhere on the camera. For people
    #: 300 px tall (Intel's one-by-one clip) different people score 0.33-0.57.
    reid_near: float = 0.7
    reid_far: float = 0.85
    #: People shorter than this (pixels, at the link) give vague vectors from upscaled crops: on
    #: PETS09 (60-150 px) different people reach 0.9 where the tracker swapped them, and a wrong link
    #: hides a person from search (R@10 0.875 -> 0.81 at 0.6-0.8), so they need near-certain ones.
    small_height: float = 160.0
    reid_near_small: float = 0.92
    reid_far_small: float = 0.95
    #: A small person's track picked up again within ``continue_gap`` seconds where it was, or where
    #: it was heading (``continue_reach`` box heights from either), is the tracker losing someone for
    #: a moment (occlusion, missed detections): linked at a re-id similarity of ``reid_continue``, as a
    #: continuation at the same spot is rarely someone else. On PETS09 the true such pairs score
    #: 0.73-0.83 and the closest different pair, two people in black swapping 2.0 s apart, 0.87.
    continue_gap: float = 1.5
    continue_reach: float = 1.0
    reid_continue: float = 0.75
    #: Re-id similarity needed less for a continuation at once and at the same spot (scaled down
    #: to 0 at ``continue_gap`` or ``continue_reach``): on PETS09 frames 401-795 a person lost for
    #: 0.2 s at the same spot scored 0.73; the closest different pair, 0.55 heights away at once, 0.58.
    continue_bonus: float = 0.1
    #: Score lost per second of gap, so that of two candidates the nearer in time wins.
    gap_cost: float = 0.01
    #: Colour-descriptor similarity that links nearby tracks when one has no re-id vector.
    colour_near: float = 0.99


@dataclass(frozen=True)
class TrackInfo:
    """What grouping reads of a track: times on one clock, first and last boxes, vectors."""

    track_id: int
    #: Tracks are only grouped with tracks of the same key (camera, and source for files).
    key: Any
    label: str
    start: float
    end: float
    first_box: Box
    last_box: Box
    reid: np.ndarray | None
    colour: np.ndarray | None


def _kind(label: str) -> str:
    return "vehicle" if label in VEHICLE_LABELS and label != "bicycle" else label


def _centre(box: Box) -> tuple[float, float, float]:
    x1, y1, x2, y2 = box
    return (x1 + x2) / 2, (y1 + y2) / 2, max(y2 - y1, 1.0)


def _heading_distance(a: TrackInfo, b: TrackInfo, gap: float) -> float:
    """Pixels between where ``a`` was heading (its mean velocity over ``gap`` seconds) and ``b``'s start."""
    ax, ay, _ = _centre(a.last_box)
    fx, fy, _ = _centre(a.first_box)
    bx, by, _ = _centre(b.first_box)
    # A track of a few frames has no direction worth extrapolating: 0.5 s keeps its speed sane.
    duration = max(a.end - a.start, 0.5)
    return float(np.hypot(ax + (ax - fx) / duration * gap - bx, ay + (ay - fy) / duration * gap - by))


def link_score(a: TrackInfo, b: TrackInfo, s: GroupingSettings) -> float | None:
    """How surely ``b`` continues ``a`` (higher: surer), or None when it cannot."""
    gap = b.start - a.end
    if a.key != b.key or _kind(a.label) != _kind(b.label) or gap < -s.overlap or gap > s.window:
        return None
    ax, ay, ah = _centre(a.last_box)
    bx, by, bh = _centre(b.first_box)
    height = (ah + bh) / 2
    distance = float(np.hypot(ax - bx, ay - by)) / height
    reach = s.reach + s.speed * max(gap, 0.0)
    near = distance <= (reach if reach <= s.max_reach else s.reach)
    penalty = s.gap_cost * max(gap, 0.0)
    if a.reid is not None and b.reid is not None:
        sim = float(a.reid @ b.reid)
        small = min(ah, bh) < s.small_height
        near_t, far_t = (s.reid_near_small, s.reid_far_small) if small else (s.reid_near, s.reid_far)
        if sim >= far_t or (near and sim >= near_t):
            return sim + (0.1 if near else 0.0) - penalty
        if small and 0.0 <= gap <= s.continue_gap:
            off = min(distance, _heading_distance(a, b, gap) / height)
            # The sooner and nearer it is picked up, the less likeness it needs: lost for two
            # frames at the same spot, 0.67; a second later a height away, 0.75.
            closeness = 1.0 - max(gap / s.continue_gap, off / s.continue_reach)
            if closeness >= 0.0 and sim >= s.reid_continue - s.continue_bonus * closeness:
                return sim + 0.1 - penalty
        return None
    if near and a.colour is not None and b.colour is not None and len(a.colour) == len(b.colour):
        sim = float(a.colour @ b.colour)
        if sim >= s.colour_near:
            return sim - penalty
    return None


def group_tracks(
    tracks: Sequence[TrackInfo],
    settings: GroupingSettings | None = None,
    scores: dict[tuple[int, int], float | None] | None = None,
) -> dict[int, int]:
    """Track id -> group id (the group's first track id) for every track given.

    ``scores``: :func:`link_score` of pairs already scored with these settings, by track ids,
    filled in as pairs are scored: regrouping after a few new tracks then scores only their pairs
    (scoring every pair was most of the time), and the result is the same as without it.
    """
    s = settings or GroupingSettings()
    known: dict[tuple[int, int], float | None] = {} if scores is None else scores
    by_key: dict[Any, list[TrackInfo]] = defaultdict(list)
    for t in tracks:
        by_key[(t.key, _kind(t.label))].append(t)
    pairs: list[tuple[float, int, int]] = []
    for members in by_key.values():
        members.sort(key=lambda t: t.start)
        starts = np.array([t.start for t in members])
        for i, a in enumerate(members):
            # Only tracks starting inside the window after a's end can continue it.
            hi = int(np.searchsorted(starts, a.end + s.window, side="right"))
            for j in range(i + 1, hi):
                pair = (a.track_id, members[j].track_id)
                if pair in known:
                    score = known[pair]
                else:
                    score = known[pair] = link_score(a, members[j], s)
                if score is not None:
                    pairs.append((score, a.track_id, members[j].track_id))
    parent = {t.track_id: t.track_id for t in tracks}

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    has_next: set[int] = set()
    has_prev: set[int] = set()
    for _, a_id, b_id in sorted(pairs, key=lambda p: -p[0]):
        if a_id in has_next or b_id in has_prev or root(a_id) == root(b_id):
            continue
        has_next.add(a_id)
        has_prev.add(b_id)
        parent[root(b_id)] = root(a_id)
    start = {t.track_id: t.start for t in tracks}
    first: dict[int, int] = {}
    for tid in parent:
        r = root(tid)
        if r not in first or start[tid] < start[first[r]]:
            first[r] = tid
    return {tid: first[root(tid)] for tid in parent}


def load_tracks(store: Store, *, above: int = 0) -> list[TrackInfo]:
    """The :class:`TrackInfo` of the store's tracks with ids above ``above``, in three queries."""
    bounds = (
        select(
            ObservationRow.track_id,
            func.min(ObservationRow.frame).label("first"),
            func.max(ObservationRow.frame).label("last"),
        )
        .where(ObservationRow.track_id > above)
        .group_by(ObservationRow.track_id)
    )
    b = bounds.subquery()
    boxes_q = select(
        ObservationRow.track_id,
        ObservationRow.frame,
        ObservationRow.x1,
        ObservationRow.y1,
        ObservationRow.x2,
        ObservationRow.y2,
        b.c.first,
    ).join(
        b,
        and_(
            ObservationRow.track_id == b.c.track_id,
            (ObservationRow.frame == b.c.first) | (ObservationRow.frame == b.c.last),
        ),
    )
    tracks_q = select(
        Track.id,
        Track.camera_id,
        Track.source_id,
        Track.label,
        Track.start_t,
        Track.end_t,
        Track.start_at,
        Track.end_at,
        Track.appearance,
    )
    reid_q = select(TrackEmbedding.track_id, TrackEmbedding.vector).where(
        TrackEmbedding.model == REID_MODEL, TrackEmbedding.track_id > above
    )
    tracks_q = tracks_q.where(Track.id > above)
    with store.engine.connect() as connection:
        first_box: dict[int, Box] = {}
        last_box: dict[int, Box] = {}
        for row in connection.execute(boxes_q):
            box = (row.x1, row.y1, row.x2, row.y2)
            (first_box if row.frame == row.first else last_box)[row.track_id] = box
        reid = {r.track_id: np.frombuffer(r.vector, "<f4") for r in connection.execute(reid_q)}
        out = []
        for r in connection.execute(tracks_q):
            if r.id not in first_box:
                continue
            wall = r.start_at is not None and r.end_at is not None
            out.append(
                TrackInfo(
                    track_id=r.id,
                    # Wall-clock times compare across a camera's files; file offsets only within one.
                    key=r.camera_id if wall else (r.camera_id, r.source_id),
                    label=r.label,
                    start=r.start_at.timestamp() if wall else r.start_t,
                    end=r.end_at.timestamp() if wall else r.end_t,
                    first_box=first_box[r.id],
                    last_box=last_box.get(r.id, first_box[r.id]),
                    reid=reid.get(r.id),
                    colour=None if r.appearance is None else np.frombuffer(r.appearance, "<f4"),
                )
            )
    return out


@dataclass
class _Groups:
    revision: Any
    of: dict[int, int]
    members: dict[int, list[int]] = field(default_factory=dict)
    #: The group id of each row of the index (``of`` in index order), so that a search picks and
    #: counts groups with array operations instead of a dict look-up per candidate.
    row_group: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class TrackGroups:
    """The store's track groups, kept up to date with the search index; thread-safe.

    When the index changes, only tracks new to it are read from the store (a live
    camera adds tracks every few seconds); the grouping itself is recomputed in memory.
    """

    def __init__(self, store: Store, settings: GroupingSettings | None = None) -> None:
        self.store = store
        self.settings = settings or GroupingSettings()
        self._cached: _Groups | None = None
        self._infos: dict[int, TrackInfo] = {}
        #: Ids of the tracks of the last index grouped: all read (those without observations too).
        self._read: set[int] = set()
        #: Link scores of the pairs of tracks scored so far (a track's info never changes).
        self._scores: dict[tuple[int, int], float | None] = {}
        self._lock = threading.Lock()
        #: Segment times of tracks read for earlier results, per index lineage (see .hit_rows).
        self._times: LineageCache[tuple[float, float | str, float | str]] = LineageCache()

    def get(self, index: Any) -> _Groups:
        """The groups of the tracks of ``index`` (a :class:`camsight.search.index.FacetIndex`)."""
        cached = self._cached
        if cached is not None and cached.revision == index.revision:
            return cached
        with self._lock:
            if self._cached is not None and self._cached.revision == index.revision:
                return self._cached
            current = set(index.track_ids.tolist())
            infos = {tid: info for tid, info in self._infos.items() if tid in current}
            # Tracks already read, with or without observations: a track without any (never grouped)
            # was read again on every change, so each new live track re-read the whole store.
            missing = current - self._read
            if missing:
                for info in load_tracks(self.store, above=min(missing) - 1):
                    if info.track_id in missing:
                        infos[info.track_id] = info
            # The index's tracks were committed with their observations before it was built, so
            # what load_tracks did not return for them has none: no need to read them again.
            self._read = current
            if len(infos) < len(self._infos):  # tracks deleted: forget their pairs
                self._scores = {p: v for p, v in self._scores.items() if p[0] in infos and p[1] in infos}
            self._infos = infos
            of = group_tracks(list(infos.values()), self.settings, self._scores)
            members: dict[int, list[int]] = defaultdict(list)
            for tid, gid in of.items():
                members[gid].append(tid)
            row_group = _row_groups(index.track_ids, of)
            self._cached = _Groups(index.revision, of, dict(members), row_group)
            return self._cached

    def count(self, track_ids: Iterable[int], index: Any) -> int:
        """How many results (groups) ``track_ids`` make."""
        of = self.get(index).of
        return len({of.get(int(t), int(t)) for t in track_ids})

    def count_rows(self, rows: np.ndarray, index: Any) -> int:
        """How many results (groups) the index rows ``rows`` make: :meth:`count` by row, vectorised."""
        return len(np.unique(self.get(index).row_group[rows]))

    def first_of_groups(self, rows: np.ndarray, index: Any, limit: int) -> np.ndarray:
        """Positions in ``rows`` (index rows, best first) of each group's first row, at most ``limit``.

        In order: what :meth:`collapse` keeps, known before hits are built, so that only the hits
        returned are read and explained.
        """
        _, first = np.unique(self.get(index).row_group[rows], return_index=True)  # first occurrences
        return np.sort(first)[:limit]

    def collapse(
        self,
        hits: Sequence[Any],
        index: Any,
        known: dict[int, tuple[float, float | str, float | str]] | None = None,
    ) -> list[Any]:
        """Keep the best-ranked hit of each group, in order, with all its group's ``segments``.

        ``hits`` are :class:`camsight.search.engine.Hit` (anything with ``track_id``,
        ``start``, ``end`` and a ``segments`` list); a track grouped with no other keeps one
        segment, itself. ``known``: :func:`segment_time` of tracks the caller has already read,
        which are not read again.
        """
        groups = self.get(index)
        kept: dict[int, Any] = {}
        for hit in hits:
            gid = groups.of.get(hit.track_id, hit.track_id)
            if gid not in kept:
                kept[gid] = hit
        if not kept:
            return []
        wanted = [tid for gid in kept for tid in groups.members.get(gid, [gid])]
        known = known or {}
        lineage = getattr(index, "lineage", None)
        times, missing = self._times.get_many((t for t in wanted if t not in known), lineage)
        fresh = _segment_times(self.store, missing)
        self._times.put_many(fresh, lineage)
        times.update(fresh)
        times.update((t, known[t]) for t in wanted if t in known)
        for gid, hit in kept.items():
            ids = sorted(groups.members.get(gid, [hit.track_id]), key=lambda t: times.get(t, (0.0, 0.0))[0])
            hit.segments = [
                {"track_id": t, "start": times[t][1], "end": times[t][2]} for t in ids if t in times
            ]
        return list(kept.values())


def _row_groups(track_ids: np.ndarray, of: dict[int, int]) -> np.ndarray:
    """``of.get(t, t)`` for each of ``track_ids``, vectorised (a dict look-up per track was ms)."""
    ids = np.asarray(track_ids, np.int64)
    moved = [(t, g) for t, g in of.items() if t != g]  # only grouped fragments map elsewhere
    if not moved or not len(ids):
        return ids.copy()
    keys, values = np.array(moved, np.int64).T
    sorter = np.argsort(keys)
    at = np.minimum(np.searchsorted(keys, ids, sorter=sorter), len(keys) - 1)
    hit = keys[sorter[at]] == ids
    return np.where(hit, values[sorter[at]], ids)


def _segment_times(store: Store, ids: list[int]) -> dict[int, tuple[float, float | str, float | str]]:
    """Per track: a sort key, and its start and end as hits show them (file seconds, live ISO times)."""
    out: dict[int, tuple[float, float | str, float | str]] = {}
    if not ids:
        return out
    query = (
        select(Track.id, Track.start_t, Track.end_t, Track.start_at, Track.end_at, Camera.kind)
        .join(Camera, Track.camera_id == Camera.id)
        .where(Track.id.in_(ids))
    )
    with store.engine.connect() as connection:
        for r in connection.execute(query):
            out[r.id] = segment_time(r.start_t, r.end_t, r.start_at, r.end_at, r.kind)
    return out


def segment_time(
    start_t: float, end_t: float, start_at: Any, end_at: Any, camera_kind: str
) -> tuple[float, float | str, float | str]:
    """A track's sort key, and its start and end as a segment shows them (file seconds, live ISO times)."""
    key = start_at.timestamp() if start_at is not None else start_t
    if camera_kind == "live" and start_at is not None and end_at is not None:
        return (key, start_at.isoformat(), end_at.isoformat())
    return (key, round(start_t, 3), round(end_t, 3))


#: Lowest re-id similarity a "more like this" result may have: below it people merely share dark
#: clothes (different PETS09 people reach 0.6-0.8, one person's fragments 0.6-0.9).
SIMILAR_REID = 0.6
#: The same for the colour descriptor, when the reference has no re-id vector.
SIMILAR_COLOUR = 0.8


@dataclass(frozen=True)
class Similar:
    """Tracks like a reference, best first, above the cut-off of the vector used (``model``)."""

    track_ids: np.ndarray
    scores: np.ndarray
    model: str
    cutoff: float
    candidates: int


def similar_tracks(
    store: Store, track_id: int, *, same_camera: bool = False, limit: int | None = None
) -> Similar | None:
    """Tracks whose re-id vector (else colour descriptor) is close to ``track_id``'s; None without one.

    ``limit``: at most that many, the most alike. On PostgreSQL that is a nearest-neighbour
    query on the vector's HNSW index (``candidates`` then counts the neighbours it returned);
    elsewhere, and without a limit, every comparable track is scored.
    """
    with store.engine.connect() as connection:
        ref = connection.execute(
            select(Track.label, Track.camera_id, Track.appearance).where(Track.id == track_id)
        ).one_or_none()
        if ref is None:
            return None
        group = VEHICLE_LABELS if ref.label in VEHICLE_LABELS else (ref.label,)
        mine = connection.execute(
            select(TrackEmbedding.vector).where(
                TrackEmbedding.track_id == track_id, TrackEmbedding.model == REID_MODEL
            )
        ).scalar_one_or_none()
    if mine is not None:
        target, model, cutoff = np.frombuffer(mine, "<f4"), REID_MODEL, SIMILAR_REID
    elif ref.appearance is not None:
        target, model, cutoff = np.frombuffer(ref.appearance, "<f4"), "colour", SIMILAR_COLOUR
    else:
        return None
    camera = ref.camera_id if same_camera else None
    if limit is not None and store.engine.dialect.name == "postgresql":
        return _similar_nearest(store, track_id, target, model, cutoff, group, camera, limit)
    found = _similar_scan(store, track_id, target, model, cutoff, group, camera)
    if limit is not None:
        found = replace(found, track_ids=found.track_ids[:limit], scores=found.scores[:limit])
    return found


def _similar_scan(
    store: Store,
    track_id: int,
    target: np.ndarray,
    model: str,
    cutoff: float,
    group: tuple[str, ...],
    camera: int | None,
) -> Similar:
    """Every comparable track scored in numpy (SQLite's way, and the reference for PostgreSQL's)."""
    if model == REID_MODEL:
        query = (
            select(Track.id, TrackEmbedding.vector)
            .join(TrackEmbedding, TrackEmbedding.track_id == Track.id)
            .where(TrackEmbedding.model == REID_MODEL)
        )
    else:
        query = select(Track.id, Track.appearance).where(Track.appearance.is_not(None))
    query = query.where(Track.label.in_(group), Track.id != track_id)
    if camera is not None:
        query = query.where(Track.camera_id == camera)
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    width = len(target)
    rows = [r for r in rows if len(r[1]) == width * 4]  # vectors of another size are not comparable
    if not rows:
        return Similar(np.zeros(0, np.int64), np.zeros(0, np.float32), model, cutoff, 0)
    ids = np.array([r[0] for r in rows], np.int64)
    sims = np.frombuffer(b"".join(r[1] for r in rows), "<f4").reshape(-1, width) @ target
    order = np.argsort(-sims, kind="stable")
    order = order[sims[order] >= cutoff]
    return Similar(ids[order], sims[order].astype(np.float32), model, cutoff, len(ids))


def _similar_nearest(
    store: Store,
    track_id: int,
    target: np.ndarray,
    model: str,
    cutoff: float,
    group: tuple[str, ...],
    camera: int | None,
    limit: int,
) -> Similar:
    """The ``limit`` nearest tracks by the HNSW index (PostgreSQL), those above the cut-off."""
    column = embedding_column(REID_MODEL) if model == REID_MODEL else appearance_column()
    where = "t.label IN :labels AND t.id != :me" + (
        " AND t.camera_id = :camera" if camera is not None else ""
    )
    params = {"labels": group, "me": track_id, "camera": camera}
    with store.engine.begin() as connection:
        near = nearest(connection, column, target, limit, where=where, params=params, expanding=("labels",))
    kept = [(i, s) for i, s in near if s >= cutoff]
    return Similar(
        np.array([i for i, _ in kept], np.int64),
        np.array([s for _, s in kept], np.float32),
        model,
        cutoff,
        len(near),
    )
