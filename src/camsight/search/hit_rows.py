"""What a search hit needs from the database about each track, read in bulk and cached.

A hit shows a track's camera, times, source, evidence and a picture (its first thumbnail,
or the box of its middle observation). Under load these reads were the largest part of a
search's CPU time (profiled with 30 concurrent clients: about a third of it), and the same
top tracks come back for search after search. None of it changes once the track is stored
except by a change that rebuilds the search index (a deletion or re-analysis starts a new
index *lineage*, :class:`~camsight.search.index.FacetIndex`), so rows are cached per lineage.

    reader = HitRowReader(store)
    rows = reader.read([12, 40], lineage=index.lineage)   # {12: HitRow(...), 40: HitRow(...)}
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session

from camsight.store.db import Store
from camsight.store.models import Camera, ObservationRow, Source, Thumbnail, Track

V = TypeVar("V")

#: Tracks kept; a page of hits is at most a few hundred, so this holds many pages' worth.
CACHE_SIZE = 20_000


@dataclass(frozen=True)
class HitRow:
    """One track's row (id, label, times, attributes, camera, kind, uri) and its picture."""

    track: Any
    thumbnail: Any | None
    middle: Any | None


class LineageCache(Generic[V]):
    """Values per track id, valid for one search-index lineage; least recently used go first.

    Thread-safe: the API searches from a thread pool.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._cache: OrderedDict[int, tuple[int, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def get_many(self, track_ids: Iterable[int], lineage: int | None) -> tuple[dict[int, V], list[int]]:
        """``(found, missing)``: cached values of ``lineage`` and the ids without one (all when None)."""
        found: dict[int, V] = {}
        missing: list[int] = []
        with self._lock:
            for tid in track_ids:
                entry = self._cache.get(tid) if lineage is not None else None
                if entry is not None and entry[0] == lineage:
                    self._cache.move_to_end(tid)
                    found[tid] = entry[1]
                else:
                    missing.append(tid)
        return found, missing

    def put_many(self, values: dict[int, V], lineage: int | None) -> None:
        """Remember ``values`` for ``lineage`` (nothing when None)."""
        if lineage is None or not values:
            return
        with self._lock:
            for tid, value in values.items():
                self._cache[tid] = (lineage, value)
                self._cache.move_to_end(tid)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)


class HitRowReader:
    """Reads :class:`HitRow` s in three bulk queries, caching them per index lineage."""

    def __init__(self, store: Store, size: int = CACHE_SIZE) -> None:
        self.store = store
        self.cache: LineageCache[HitRow] = LineageCache(size)

    def read(self, track_ids: Sequence[int], *, lineage: int | None) -> dict[int, HitRow]:
        """The rows of ``track_ids`` that exist (a track deleted since indexing is left out).

        ``lineage``: the search index's lineage the ids came from; rows cached under
        another lineage are read again. None reads everything from the database.
        """
        found, missing = self.cache.get_many(track_ids, lineage)
        if not missing:
            return found
        # Read-only: a plain connection (no transaction to commit, no ORM session) keeps a busy
        # server off the write path.
        with self.store.engine.connect() as connection:
            rows = {row.id: row for row in connection.execute(_HIT_ROWS, {"ids": missing}).all()}
            thumbs = {th.track_id: th for th in connection.execute(_HIT_THUMBNAILS, {"ids": missing}).all()}
            middle = middle_observations(connection, [i for i in missing if i not in thumbs])
        fresh = {tid: HitRow(rows[tid], thumbs.get(tid), middle.get(tid)) for tid in missing if tid in rows}
        self.cache.put_many(fresh, lineage)
        return found | fresh


# The statements of a page of hits, built once: constructing them took as long as running them.
# Columns, not ORM objects: building three entities per hit was a large part of a search's CPU
# time under load, and nothing here changes them. The ids are one expanding parameter.
_HIT_ROWS = (
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
    .where(Track.id.in_(bindparam("ids", expanding=True)))
)
_HIT_THUMBNAILS = select(
    Thumbnail.track_id,
    Thumbnail.frame,
    Thumbnail.x1,
    Thumbnail.y1,
    Thumbnail.x2,
    Thumbnail.y2,
    Thumbnail.path,
).where(Thumbnail.track_id.in_(bindparam("ids", expanding=True)), Thumbnail.rank == 0)
_RANKED_OBSERVATIONS = (
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
    .where(ObservationRow.track_id.in_(bindparam("ids", expanding=True)))
    .subquery()
)
# Row n // 2 + 1 (1-based) is element n // 2 of the frame-ordered list, as before.
_MIDDLE_OBSERVATIONS = select(_RANKED_OBSERVATIONS).where(
    _RANKED_OBSERVATIONS.c.rn == _RANKED_OBSERVATIONS.c.n // 2 + 1
)


def middle_observations(connection: Connection | Session, track_ids: list[int]) -> dict[int, Any]:
    """The middle observation (by frame) of each track, for hits without a thumbnail, in one query.

    One windowed query rather than one per track loading all its observations: a page of
    50 such hits was 50 queries and most of a search's time under load.
    """
    if not track_ids:
        return {}
    found = connection.execute(_MIDDLE_OBSERVATIONS, {"ids": track_ids}).all()
    return {row.track_id: row for row in found}
