"""An in-memory, column-major index of every track's facet scores.

Scoring a million tracks in SQL is too slow for interactive search on one
box; numpy over a (facets x tracks) uint8 matrix takes milliseconds. The
database stays the source of truth: the index is rebuilt whenever the
store's tracks revision changes, and cached on disk per revision so a new
process starts fast.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from camsight.analytics.vocabulary import FACETS
from camsight.store import repository as repo
from camsight.store.db import Store
from camsight.store.models import Camera, Track, TrackEmbedding
from camsight.vision.detections import CLASSES

_NAN = np.float64("nan")


@dataclass
class FacetIndex:
    """Arrays aligned by position: one entry per track."""

    revision: int
    track_ids: np.ndarray  # int64
    camera_ids: np.ndarray  # int32
    labels: np.ndarray  # int8 index into CLASSES
    start_at: np.ndarray  # float64 epoch seconds, NaN when unknown
    end_at: np.ndarray
    facets: np.ndarray  # uint8 (len(FACETS), N)
    camera_names: dict[str, int]

    def __len__(self) -> int:
        return len(self.track_ids)

    def column(self, facet: str) -> np.ndarray:
        """Scores of one facet for every track, as float32 in [0, 1]."""
        return self.facets[FACETS.index(facet)].astype(np.float32) / 255.0


def build(store: Store) -> FacetIndex:
    """Read every track's facets from the database."""
    with store.session() as session:
        revision = repo.tracks_revision(session)
        cams = dict(session.execute(select(Camera.name, Camera.id)).all())
        rows = session.execute(
            select(
                Track.id, Track.camera_id, Track.label, Track.start_at, Track.end_at, Track.facets
            ).order_by(Track.id)
        ).all()
    n = len(rows)
    label_code = {c: i for i, c in enumerate(CLASSES)}
    track_ids = np.fromiter((r[0] for r in rows), np.int64, n)
    camera_ids = np.fromiter((r[1] for r in rows), np.int32, n)
    labels = np.fromiter((label_code.get(r[2], -1) for r in rows), np.int8, n)
    start_at = np.fromiter((r[3].timestamp() if r[3] else _NAN for r in rows), np.float64, n)
    end_at = np.fromiter((r[4].timestamp() if r[4] else _NAN for r in rows), np.float64, n)
    width = len(FACETS)
    empty = bytes(width)
    blob = b"".join((r[5] if r[5] is not None and len(r[5]) == width else empty) for r in rows)
    facets = np.frombuffer(blob, np.uint8).reshape(n, width).T.copy() if n else np.zeros((width, 0), np.uint8)
    return FacetIndex(revision, track_ids, camera_ids, labels, start_at, end_at, facets, cams)


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
        if old != path:
            old.unlink(missing_ok=True)


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
    """Vision-language embeddings of one model, rows sorted by track id."""

    revision: int
    model: str
    track_ids: np.ndarray  # int64, ascending
    vectors: np.ndarray  # float32 (N, dim), unit rows

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


def build_embeddings(store: Store, model: str) -> EmbeddingIndex:
    with store.session() as session:
        revision = repo.tracks_revision(session)
        rows = session.execute(
            select(TrackEmbedding.track_id, TrackEmbedding.vector)
            .where(TrackEmbedding.model == model)
            .order_by(TrackEmbedding.track_id)
        ).all()
    if not rows:
        return EmbeddingIndex(revision, model, np.zeros(0, np.int64), np.zeros((0, 0), np.float32))
    dim = len(rows[0][1]) // 4
    rows = [r for r in rows if len(r[1]) == dim * 4]
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    vectors = np.frombuffer(b"".join(r[1] for r in rows), "<f4").reshape(len(rows), dim)
    return EmbeddingIndex(revision, model, ids, vectors)


class IndexCache:
    """Keeps the index of one store current; thread-safe for the API server."""

    #: Below this many tracks, writing a disk cache costs more than it saves.
    DISK_CACHE_MIN = 20_000

    def __init__(self, store: Store) -> None:
        self.store = store
        self._index: FacetIndex | None = None
        self._embeddings: dict[str, EmbeddingIndex] = {}
        self._lock = threading.Lock()

    def embeddings(self, model: str) -> EmbeddingIndex:
        """The embeddings of ``model``, rebuilt when tracks changed."""
        with self.store.session() as session:
            revision = repo.tracks_revision(session)
        with self._lock:
            cached = self._embeddings.get(model)
            if cached is None or cached.revision != revision:
                cached = self._embeddings[model] = build_embeddings(self.store, model)
            return cached

    def get(self) -> FacetIndex:
        with self.store.session() as session:
            revision = repo.tracks_revision(session)
        with self._lock:
            if self._index is not None and self._index.revision == revision:
                return self._index
            index = _load_cached(self.store, revision)
            if index is None:
                index = build(self.store)
                if len(index) >= self.DISK_CACHE_MIN:
                    _save(self.store, index)
            self._index = index
            return index
