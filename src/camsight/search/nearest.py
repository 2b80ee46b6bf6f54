"""Vision-language similarity from the database's nearest-neighbour index (PostgreSQL with pgvector).

On SQLite the engine scores every candidate against an in-memory copy of the
embeddings (:class:`camsight.search.index.EmbeddingIndex`). On PostgreSQL a query
ranked by visual similarity alone (no attribute terms) only needs the nearest
tracks to the text, so it asks the HNSW index for them, with the query's classes,
cameras and time range applied in SQL: no copy of millions of vectors in memory.
A query with attribute terms fuses the similarity of every candidate with its
attribute score, so it keeps scoring all candidates (the in-memory copy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from camsight.search.index import IndexCache
from camsight.search.query_model import ParsedQuery
from camsight.store.vectors import embedding_column, nearest


class NearestEmbeddings:
    """The embeddings of one model, scored by nearest-neighbour queries where that gives the same ranking."""

    def __init__(self, cache: IndexCache, model: str) -> None:
        self.cache = cache
        self.model = model
        #: The lowest similarity among the candidates, found by the index (the nearest to the negated
        #: query) when :meth:`scores` used it: the floor of the [0, 1] rescaling, as a full scan has.
        self.floor: float | None = None

    def scores(
        self,
        track_ids: np.ndarray,
        query: np.ndarray,
        *,
        parsed: ParsedQuery | None = None,
        camera_ids: dict[str, int] | None = None,
        k: int | None = None,
    ) -> np.ndarray:
        """Similarity to ``query`` per track id; NaN where a track has no embedding or, with
        ``parsed`` without terms and ``k``, is not among the ``k`` nearest that pass its filters."""
        self.floor = None
        if parsed is None or parsed.terms or k is None or len(track_ids) == 0:
            return self.cache.embeddings(self.model).scores(track_ids, query)
        where, params, expanding = _filters(parsed, camera_ids or {})
        column = embedding_column(self.model)
        vec = np.asarray(query, np.float32)
        if parsed.time_of_day is not None:
            k *= 4  # the daily window is applied after (it is local time): ask for more to keep k
        with self.cache.store.engine.begin() as connection:
            near = nearest(connection, column, vec, k, where=where, params=params, expanding=expanding)
            low = nearest(
                connection, column, vec, 1, where=where, params=params, expanding=expanding, farthest=True
            )
        if low:
            self.floor = low[0][1]
        return _placed(np.asarray(track_ids, np.int64), near)


def _filters(parsed: ParsedQuery, camera_ids: dict[str, int]) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    """SQL conditions on ``t`` (tracks) for the query's classes, cameras and time range."""
    where: list[str] = []
    params: dict[str, Any] = {}
    expanding: list[str] = []
    if parsed.classes:
        where.append("t.label IN :labels")
        params["labels"] = list(parsed.classes)
        expanding.append("labels")
    if parsed.cameras:
        where.append("t.camera_id IN :cameras")
        params["cameras"] = [camera_ids[c] for c in parsed.cameras if c in camera_ids] or [-1]
        expanding.append("cameras")
    if parsed.since is not None:
        where.append("t.end_at >= :since")
        params["since"] = parsed.since
    if parsed.until is not None:
        where.append("t.start_at <= :until")
        params["until"] = parsed.until
    return " AND ".join(where), params, tuple(expanding)


def _placed(track_ids: np.ndarray, near: list[tuple[int, float]]) -> np.ndarray:
    """The similarities of ``near`` at their tracks' positions in ``track_ids``; NaN elsewhere.

    Vectorised: ``track_ids`` are a search's candidates, millions on a large store.
    """
    out = np.full(len(track_ids), np.nan, np.float32)
    if not near or not len(track_ids):
        return out
    ids = np.array([i for i, _ in near], np.int64)
    sims = np.array([s for _, s in near], np.float32)
    order = np.argsort(track_ids, kind="stable")  # the candidates come sorted: this is cheap
    pos = np.clip(np.searchsorted(track_ids, ids, sorter=order), 0, len(track_ids) - 1)
    hit = track_ids[order[pos]] == ids
    out[order[pos[hit]]] = sims[hit]
    return out
