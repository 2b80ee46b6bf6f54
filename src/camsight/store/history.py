"""A camera's past tracks, for rules that learn what is normal in its view.

Rules that set ``needs_history`` (e.g. unusual activity) get the camera's
most recent finished tracks as :class:`~camsight.analytics.rules.base.PastTrack`:
feet points (bottom centre of each box) normalised by the frame size of the
source they came from, so files of one camera recorded at other resolutions
still line up.

>>> history = camera_history(store, "lobby", exclude_source_id=source_id)  # doctest: +SKIP
>>> history[0].label, history[0].points.shape  # doctest: +SKIP
('person', (57, 3))
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from camsight.records.events import PastTrack
from camsight.store.db import Store
from camsight.store.models import Camera, ObservationRow, Source, Track
from camsight.store.repository import FINAL


def camera_history(
    store: Store, camera: str, *, limit: int = 5000, exclude_source_id: int | None = None
) -> list[PastTrack]:
    """The ``limit`` most recent finished tracks of ``camera``, newest first.

    Only sources whose indexing finished (``complete`` or ``damaged``) count:
    an interrupted one may hold half-written tracks. ``exclude_source_id``
    leaves out the source being analysed now, so footage is never judged
    against itself. An unknown camera has no history (an empty list).

    Two queries whatever the number of tracks: the tracks, then all their
    observations in one ordered scan, split per track in numpy.
    """
    if limit <= 0:
        return []
    recent = (
        select(Track.id, Track.label, Track.speed_bh_s, Source.width, Source.height)
        .join(Source, Source.id == Track.source_id)
        .join(Camera, Camera.id == Track.camera_id)
        .where(Camera.name == camera, Source.status.in_(FINAL))
    )
    if exclude_source_id is not None:
        recent = recent.where(Track.source_id != exclude_source_id)
    # Wall-clock order when the footage has a clock; otherwise the order the files were indexed in.
    recent = recent.order_by(
        Track.start_at.desc().nulls_last(), Source.id.desc(), Track.start_t.desc(), Track.id.desc()
    ).limit(limit)
    with store.session() as session:
        rows = session.execute(recent).all()
        if not rows:
            return []
        # The same selection as a subquery, rather than thousands of bound ids in an IN list.
        picked = recent.with_only_columns(Track.id).scalar_subquery()
        # Core (not ORM) execution and plain tuples: half a million rows load in well under a second.
        obs = (
            session.connection()
            .execute(
                select(
                    ObservationRow.track_id,
                    ObservationRow.t,
                    ObservationRow.x1,
                    ObservationRow.x2,
                    ObservationRow.y2,
                )
                .where(ObservationRow.track_id.in_(picked))
                .order_by(ObservationRow.track_id, ObservationRow.frame)
            )
            .fetchall()
        )
    meta = {row.id: row for row in rows}
    if not obs:
        return []
    arr = np.array([tuple(row) for row in obs], np.float64)
    track_ids = arr[:, 0].astype(np.int64)
    starts = np.flatnonzero(np.r_[True, track_ids[1:] != track_ids[:-1]])
    ends = np.r_[starts[1:], len(arr)]
    by_track: dict[int, np.ndarray] = {}
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        tid = int(track_ids[s])
        row = meta[tid]
        w, h = max(int(row.width), 1), max(int(row.height), 1)
        chunk = arr[s:e]
        points = np.empty((e - s, 3), np.float64)
        points[:, 0] = chunk[:, 1]
        points[:, 1] = (chunk[:, 2] + chunk[:, 3]) / (2.0 * w)
        points[:, 2] = chunk[:, 4] / h
        by_track[tid] = points
    return [
        PastTrack(label=row.label, points=by_track[row.id], speed_bh_s=float(row.speed_bh_s))
        for row in rows
        if row.id in by_track
    ]
