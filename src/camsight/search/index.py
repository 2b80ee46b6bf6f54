"""An in-memory, column-major index of every track's facet scores.

Scoring a million tracks in SQL is too slow for interactive search on one
box; numpy over a (facets x tracks) uint8 matrix takes milliseconds. The
database stays the source of truth: the index follows the store's tracks
revision, and is cached on disk so a new process starts fast.

Live cameras add tracks every second, and rebuilding the whole index for each
new track takes seconds on a large store. So when only tracks were added since
the index was made, the new tracks are appended to it; any other change
(tracks deleted when a source is replaced or discarded) forces a full rebuild.
Two independent checks decide "only appended":

- the store records the last revision that was *not* a pure append
  (``repo.tracks_state``; every writer but ``save_tracks`` counts as one), and
- the number of tracks in the database must equal the index's tracks plus the
  ones fetched, which also catches a deletion that forgot to say so, and a
  track with a lower id committed late (possible with PostgreSQL sequences).

On PostgreSQL camsight's own writers never commit ids out of order (they take
``repository.lock_tracks`` before inserting), so the count check only costs a
rebuild when some other writer did.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from camsight.records.facets import FACETS
from camsight.store import repository as repo
from camsight.store.db import Store
from camsight.store.models import Camera, Track, TrackEmbedding
from camsight.vision.detections import CLASSES

log = logging.getLogger(__name__)
_NAN = np.float64("nan")
_LABEL_CODE = {c: i for i, c in enumerate(CLASSES)}
#: Each full build or load starts a new lineage; appends keep it. An embeddings
#: index follows one lineage, so it is rebuilt whenever the facet index was.
_LINEAGES = count(1)


class _Growable:
    """Arrays with spare room at the end, so appending k tracks costs O(k), not a copy of all N.

    Each index is a view of the first ``used`` entries. Entries past ``used`` are
    written only by the append that then claims them, so an index already handed
    to a search thread never changes under it.
    """

    def __init__(self, arrays: dict[str, np.ndarray], axes: dict[str, int], used: int) -> None:
        self.arrays, self.axes, self.used = arrays, axes, used
        self._lock = threading.Lock()

    @classmethod
    def start(cls, current: dict[str, np.ndarray], axes: dict[str, int], n: int, room: int) -> _Growable:
        """Copy ``current`` (``n`` entries) into new arrays with space for ``room`` entries."""
        arrays = {}
        for name, arr in current.items():
            axis = axes[name]
            shape = list(arr.shape)
            shape[axis] = room
            big = np.empty(shape, arr.dtype)
            _put(big, axis, 0, arr)
            arrays[name] = big
        return cls(arrays, axes, n)

    def capacity(self) -> int:
        name = next(iter(self.arrays))
        return self.arrays[name].shape[self.axes[name]]

    def claim(self, n: int, new: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """Append ``new`` after the first ``n`` entries and return views of all of them.

        None when the space after ``n`` was already claimed (an append from an
        older index) or is too small: the caller then copies into a new buffer.
        """
        k = _entries(new, self.axes)
        with self._lock:
            if self.used != n or n + k > self.capacity():
                return None
            for name, arr in new.items():
                _put(self.arrays[name], self.axes[name], n, arr)
            self.used = n + k
        return {name: _head(arr, self.axes[name], n + k) for name, arr in self.arrays.items()}


def _entries(arrays: dict[str, np.ndarray], axes: dict[str, int]) -> int:
    name = next(iter(arrays))
    return arrays[name].shape[axes[name]]


def _put(dest: np.ndarray, axis: int, at: int, values: np.ndarray) -> None:
    if axis == 0:
        dest[at : at + len(values)] = values
    else:
        dest[:, at : at + values.shape[1]] = values


def _head(arr: np.ndarray, axis: int, n: int) -> np.ndarray:
    return arr[:n] if axis == 0 else arr[:, :n]


def _append(
    current: dict[str, np.ndarray],
    axes: dict[str, int],
    n: int,
    new: dict[str, np.ndarray],
    spare: _Growable | None,
) -> tuple[dict[str, np.ndarray], _Growable]:
    """``current`` (``n`` entries) followed by ``new``, reusing ``spare`` room when it is free."""
    if spare is not None:
        views = spare.claim(n, new)
        if views is not None:
            return views, spare
    k = _entries(new, axes)
    # A quarter of headroom: appends stay O(k) and memory stays within 1.25x of the index.
    grown = _Growable.start(current, axes, n, n + k + max(n // 4, 1024))
    views = grown.claim(n, new)
    assert views is not None  # fresh room always fits
    return views, grown


@dataclass
class FacetIndex:
    """Arrays aligned by position: one entry per track, ascending by track id."""

    revision: int
    track_ids: np.ndarray  # int64
    camera_ids: np.ndarray  # int32
    labels: np.ndarray  # int8 index into CLASSES
    start_at: np.ndarray  # float64 epoch seconds, NaN when unknown
    end_at: np.ndarray
    facets: np.ndarray  # uint8 (len(FACETS), N)
    camera_names: dict[str, int]
    lineage: int = field(default_factory=lambda: next(_LINEAGES))
    _spare: _Growable | None = field(default=None, repr=False, compare=False)

    #: The axis along which each array has one entry per track.
    _AXES: ClassVar[dict[str, int]] = {
        "track_ids": 0,
        "camera_ids": 0,
        "labels": 0,
        "start_at": 0,
        "end_at": 0,
        "facets": 1,
    }

    def __len__(self) -> int:
        return len(self.track_ids)

    @property
    def max_track_id(self) -> int:
        """The highest track id in the index (0 when empty): later tracks have higher ids."""
        return int(self.track_ids[-1]) if len(self.track_ids) else 0

    def column(self, facet: str) -> np.ndarray:
        """Scores of one facet for every track, as float32 in [0, 1]."""
        return self.facets[FACETS.index(facet)].astype(np.float32) / 255.0

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-track arrays by field name."""
        return {name: getattr(self, name) for name in self._AXES}

    def appended(self, revision: int, new: FacetIndex, camera_names: dict[str, int]) -> FacetIndex:
        """A new index: this one followed by the tracks of ``new`` (all with higher ids)."""
        if len(new) and len(self) and int(new.track_ids[0]) <= self.max_track_id:
            raise ValueError("appended tracks must have higher ids than the index's")
        if not len(new):
            arrays, spare = self.arrays(), self._spare
        else:
            arrays, spare = _append(self.arrays(), self._AXES, len(self), new.arrays(), self._spare)
        return FacetIndex(revision, **arrays, camera_names=camera_names, lineage=self.lineage, _spare=spare)


_TRACK_COLUMNS = (Track.id, Track.camera_id, Track.label, Track.start_at, Track.end_at, Track.facets)


def _from_rows(revision: int, rows: Sequence[Any], cams: dict[str, int]) -> FacetIndex:
    n = len(rows)
    track_ids = np.fromiter((r[0] for r in rows), np.int64, n)
    camera_ids = np.fromiter((r[1] for r in rows), np.int32, n)
    labels = np.fromiter((_LABEL_CODE.get(r[2], -1) for r in rows), np.int8, n)
    start_at = np.fromiter((r[3].timestamp() if r[3] else _NAN for r in rows), np.float64, n)
    end_at = np.fromiter((r[4].timestamp() if r[4] else _NAN for r in rows), np.float64, n)
    width = len(FACETS)
    # A shorter vector was stored before facets were appended to FACETS: the new ones read 0.
    blob = b"".join(r[5] if r[5] is not None and len(r[5]) == width else _padded(r[5], width) for r in rows)
    facets = np.frombuffer(blob, np.uint8).reshape(n, width).T.copy() if n else np.zeros((width, 0), np.uint8)
    return FacetIndex(revision, track_ids, camera_ids, labels, start_at, end_at, facets, cams)


def _padded(vector: bytes | None, width: int) -> bytes:
    """A stored facet vector at ``width``: an older, shorter one padded with zeros; else none."""
    if vector is None or not 0 < len(vector) < width:
        return bytes(width)
    return bytes(vector) + bytes(width - len(vector))


def _camera_names(session: Session) -> dict[str, int]:
    return {name: cid for name, cid in session.execute(select(Camera.name, Camera.id)).all()}


def build(store: Store) -> FacetIndex:
    """Read every track's facets from the database."""
    with store.session() as session:
        # The revision is read before the tracks: the index then holds at least
        # that revision's tracks, and a later change makes it catch up again.
        revision = repo.tracks_revision(session)
        cams = _camera_names(session)
        rows = session.execute(select(*_TRACK_COLUMNS).order_by(Track.id)).all()
    return _from_rows(revision, rows, cams)


#: How often the (cheap) reading of count and highest id is retried when a writer commits in between.
_CONSISTENT_READS = 3


def _count_and_top(session: Session) -> tuple[int, int] | None:
    """(number of tracks, highest id) as of one moment, or None if writers kept committing meanwhile.

    count(*) and max(id) in one statement make SQLite scan the table (10 ms per
    100,000 tracks); apart they are ~1 ms and O(log n). An append between them
    raises the highest id, so equal highest ids before and after the count
    mean the count belongs with it.
    """
    for _ in range(_CONSISTENT_READS):
        top = session.scalar(select(func.max(Track.id))) or 0
        n = int(session.scalar(select(func.count()).select_from(Track)) or 0)
        if (session.scalar(select(func.max(Track.id))) or 0) == top:
            return n, top
    return None


def extend(store: Store, index: FacetIndex) -> FacetIndex | None:
    """``index`` plus the tracks added since it was made; None when more than appends happened.

    None means the caller must rebuild: a track was removed (or changed) since
    ``index.revision``, or the tracks in the database are not exactly the index's
    plus the new ones.
    """
    with store.session() as session:
        revision, reset = repo.tracks_state(session)
        if reset is None or reset > index.revision or revision < index.revision:
            return None
        counted = _count_and_top(session)
        if counted is None:
            return None
        n, top = counted
        cams = _camera_names(session)
        rows = session.execute(
            select(*_TRACK_COLUMNS).where(Track.id > index.max_track_id, Track.id <= top).order_by(Track.id)
        ).all()
    if n != len(index) + len(rows):
        log.info("facet index: %d tracks in the store, %d expected; rebuilding", n, len(index) + len(rows))
        return None
    return index.appended(revision, _from_rows(revision, rows, cams), cams)


_CACHE_NAME = re.compile(rf"facets-{len(FACETS)}-r(\d+)\.npz")


def _cache_path(store: Store, revision: int) -> Path:
    return store.root / "index" / f"facets-{len(FACETS)}-r{revision}.npz"


def _save(store: Store, index: FacetIndex) -> None:
    path = _cache_path(store, index.revision)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        revision=index.revision,
        track_ids=index.track_ids,
        camera_ids=index.camera_ids,
        labels=index.labels,
        start_at=index.start_at,
        end_at=index.end_at,
        facets=index.facets,
        camera_names=np.array(list(index.camera_names.items()), dtype=object),
    )
    os.replace(tmp, path)
    for old in path.parent.glob(f"facets-{len(FACETS)}-r*.npz"):
        if old != path and _CACHE_NAME.fullmatch(old.name):
            old.unlink(missing_ok=True)


def _newest_cached(store: Store, revision: int) -> int | None:
    """The revision of the newest on-disk index not newer than ``revision``."""
    folder = store.root / "index"
    if not folder.is_dir():
        return None
    found = [int(m.group(1)) for p in folder.iterdir() if (m := _CACHE_NAME.fullmatch(p.name))]
    usable = [r for r in found if r <= revision]
    return max(usable) if usable else None


def _load_cached(store: Store, revision: int) -> FacetIndex | None:
    path = _cache_path(store, revision)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=True) as z:
            return FacetIndex(
                int(z["revision"]),
                z["track_ids"],
                z["camera_ids"],
                z["labels"],
                z["start_at"],
                z["end_at"],
                z["facets"],
                {str(k): int(v) for k, v in z["camera_names"]},
            )
    except (OSError, ValueError, KeyError):
        path.unlink(missing_ok=True)  # a damaged cache is rebuilt, never trusted
        return None


@dataclass
class EmbeddingIndex:
    """Vision-language embeddings of one model, rows sorted by track id.

    It covers the tracks up to ``watermark`` (the highest track id of the facet
    index of ``lineage`` it was made with), so appending follows the facet index.
    """

    revision: int
    model: str
    track_ids: np.ndarray  # int64, ascending
    vectors: np.ndarray  # float32 (N, dim), unit rows
    lineage: int = 0
    watermark: int = 0
    _spare: _Growable | None = field(default=None, repr=False, compare=False)

    _AXES: ClassVar[dict[str, int]] = {"track_ids": 0, "vectors": 0}

    def follows(self, facets: FacetIndex) -> bool:
        """Whether this covers exactly the tracks of ``facets`` (same lineage, same highest id)."""
        return self.lineage == facets.lineage and self.watermark == facets.max_track_id

    def scores(self, track_ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Cosine similarity to ``query`` per track id; NaN where a track has no embedding."""
        out = np.full(len(track_ids), np.nan, np.float32)
        if len(self.track_ids) == 0 or len(track_ids) == 0:
            return out
        pos = np.searchsorted(self.track_ids, track_ids)
        pos = np.clip(pos, 0, len(self.track_ids) - 1)
        found = self.track_ids[pos] == track_ids
        out[found] = self.vectors[pos[found]] @ query.astype(np.float32)
        return out


def _embedding_rows(session: Session, model: str, above: int, upto: int | None) -> list[Any]:
    query = select(TrackEmbedding.track_id, TrackEmbedding.vector).where(
        TrackEmbedding.model == model, TrackEmbedding.track_id > above
    )
    if upto is not None:
        query = query.where(TrackEmbedding.track_id <= upto)
    return list(session.execute(query.order_by(TrackEmbedding.track_id)).all())


def _vectors(rows: list[Any], dim: int) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in rows if len(r[1]) == dim * 4]  # vectors of another size are not comparable
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    vectors = np.frombuffer(b"".join(r[1] for r in rows), "<f4").reshape(len(rows), dim)
    return ids, vectors


def build_embeddings(store: Store, model: str, facets: FacetIndex | None = None) -> EmbeddingIndex:
    """Read the embeddings of ``model``; with ``facets``, of that index's tracks only."""
    upto = None if facets is None else facets.max_track_id
    with store.session() as session:
        revision = repo.tracks_revision(session) if facets is None else facets.revision
        rows = _embedding_rows(session, model, 0, upto)
    lineage, watermark = (0, 0) if facets is None else (facets.lineage, facets.max_track_id)
    if not rows:
        empty = np.zeros((0, 0), np.float32)
        return EmbeddingIndex(revision, model, np.zeros(0, np.int64), empty, lineage, watermark)
    ids, vectors = _vectors(rows, len(rows[0][1]) // 4)
    return EmbeddingIndex(revision, model, ids, vectors, lineage, watermark)


def extend_embeddings(store: Store, emb: EmbeddingIndex, facets: FacetIndex) -> EmbeddingIndex | None:
    """``emb`` plus the embeddings of the tracks ``facets`` appended since; None: rebuild instead."""
    if emb.lineage != facets.lineage or emb.watermark > facets.max_track_id or emb.vectors.shape[1] == 0:
        return None
    with store.session() as session:
        rows = _embedding_rows(session, emb.model, emb.watermark, facets.max_track_id)
    ids, vectors = _vectors(rows, emb.vectors.shape[1])
    arrays, spare = {"track_ids": emb.track_ids, "vectors": emb.vectors}, emb._spare
    if len(ids):
        new = {"track_ids": ids, "vectors": vectors}
        arrays, spare = _append(arrays, EmbeddingIndex._AXES, len(emb.track_ids), new, spare)
    return EmbeddingIndex(
        facets.revision,
        emb.model,
        arrays["track_ids"],
        arrays["vectors"],
        facets.lineage,
        facets.max_track_id,
        spare,
    )


class IndexCache:
    """Keeps the index of one store current; thread-safe for the API server.

    ``stats`` counts how each refresh was done (``full_builds``, ``disk_loads``,
    ``appends``, ``tracks_appended``, and the same for ``embedding_*``), for
    benchmarks, logs and tests.
    """

    #: Below this many tracks, writing a disk cache costs more than it saves.
    DISK_CACHE_MIN = 20_000
    #: Re-save the disk cache once appends have grown the index by this fraction since the last save.
    DISK_CACHE_GROWTH = 0.1

    def __init__(self, store: Store) -> None:
        self.store = store
        self._index: FacetIndex | None = None
        self._embeddings: dict[str, EmbeddingIndex] = {}
        self._lock = threading.Lock()
        self._saved_len = 0
        self.stats: Counter[str] = Counter()

    def embeddings(self, model: str) -> EmbeddingIndex:
        """The embeddings of ``model`` for the tracks of the current facet index."""
        facets = self.get()
        cached = self._embeddings.get(model)
        if cached is not None and cached.follows(facets):
            return cached
        with self._lock:
            facets = self._index or facets  # the newest: another thread may have refreshed it
            cached = self._embeddings.get(model)
            if cached is not None and cached.follows(facets):
                return cached
            fresh = None if cached is None else extend_embeddings(self.store, cached, facets)
            if fresh is None or cached is None:
                fresh = build_embeddings(self.store, model, facets)
                self.stats["embedding_full_builds"] += 1
            else:
                self.stats["embedding_appends"] += 1
                self.stats["embedding_tracks_appended"] += len(fresh.track_ids) - len(cached.track_ids)
            self._embeddings[model] = fresh
            return fresh

    def get(self) -> FacetIndex:
        """The facet index of the store as it is now (appending new tracks, or rebuilding)."""
        # A plain connection: this read runs on every search, and a session's transaction cost
        # more than the query.
        with self.store.engine.connect() as connection:
            revision = repo.tracks_revision(connection)
        index = self._index  # one read: another thread may replace it meanwhile
        if index is not None and index.revision == revision:
            return index
        with self._lock:
            return self._refresh()

    def _refresh(self) -> FacetIndex:
        """Bring the index up to date; called with the lock held."""
        with self.store.session() as session:
            revision = repo.tracks_revision(session)
        index = self._index
        if index is not None and index.revision == revision:
            return index  # another thread caught up while this one waited for the lock
        if index is None:
            # A new process starts from the newest disk cache, then catches up like a running one.
            cached_revision = _newest_cached(self.store, revision)
            if cached_revision is not None:
                index = _load_cached(self.store, cached_revision)
                if index is not None:
                    self.stats["disk_loads"] += 1
                    self._saved_len = len(index)
                    if index.revision == revision:
                        self._index = index
                        return index
        fresh = None if index is None else extend(self.store, index)
        if fresh is not None and index is not None:
            self.stats["appends"] += 1
            self.stats["tracks_appended"] += len(fresh) - len(index)
            log.debug("facet index: appended %d tracks (r%d)", len(fresh) - len(index), fresh.revision)
        else:
            fresh = build(self.store)
            self.stats["full_builds"] += 1
            self._saved_len = 0
            log.debug("facet index: rebuilt, %d tracks (r%d)", len(fresh), fresh.revision)
        grown = len(fresh) - self._saved_len
        if len(fresh) >= self.DISK_CACHE_MIN and grown >= self.DISK_CACHE_GROWTH * len(fresh):
            _save(self.store, fresh)
            self._saved_len = len(fresh)
        self._index = fresh
        return fresh
