"""Unusual activity: a finished track whose path this camera's own history says is rare.

The rule learns once, before the first frame, from the camera's past tracks
(:func:`camsight.store.history.camera_history`, handed over by the engine
through :meth:`Rule.learn`), with one model per class group (people,
vehicles; see :mod:`camsight.analytics.trajectory_model`). Each track of
the run is judged when it ends, so its whole path is known, and an unusual
one gets a closed event spanning the track, whose summary says what was rare
("person took an unusual path: moved up through the top of the view, where
people are seldom seen"). It describes where something went, never who it
was or why.

A class group with fewer than ``min_history`` usable past tracks stays
silent; :attr:`UnusualActivity.status` says so, for the CLI to print.

The engine calls it like every rule that ``needs_history``::

    rule = UnusualActivity(config, "lobby", geometry, schedule, source_key)
    rule.learn(camera_history(store, "lobby", exclude_source_id=source_id))
    print(rule.status)          # e.g. "person: learned from 812 past tracks; vehicle: silent, ..."
    ...
    changes = rule.track_ended(record, ctx.at, ctx.t)   # [] or [start, end]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np

from camsight.analytics.geometry import Geometry
from camsight.analytics.rules.base import (
    EventChange,
    FrameContext,
    PastTrack,
    Rule,
    TrackHistory,
    wall_time,
)
from camsight.analytics.schedule import Schedule
from camsight.analytics.trajectory_model import GROUPS, CameraModel, group_of, judgeable
from camsight.records.tracks import TrackRecord


@dataclass(frozen=True)
class _Clock:
    """The (t, at) pair :meth:`Rule.new_event` reads from a frame; a track's end has no frame."""

    t: float
    at: datetime | None


def feet_points(record: TrackRecord, size: tuple[int, int]) -> np.ndarray:
    """(n, 3) rows of t, feet x, feet y of a track, normalised by the frame ``size`` (w, h).

    The same points :func:`~camsight.store.history.camera_history` gives for
    stored tracks, so a new track is judged on the scale the model learned.
    """
    w, h = max(size[0], 1), max(size[1], 1)
    boxes = np.array([o.box for o in record.observations], np.float64).reshape(-1, 4)
    t = np.array([o.t for o in record.observations], np.float64)
    return np.column_stack([t, (boxes[:, 0] + boxes[:, 2]) / (2.0 * w), boxes[:, 3] / h])


class UnusualActivity(Rule):
    """Raises a closed event for each finished track whose path is rare for this camera."""

    needs_history = True

    def __init__(
        self, config: Any, camera: str, geometry: Geometry, schedule: Schedule | None, source_key: str
    ) -> None:
        super().__init__(config, camera, geometry, schedule, source_key)
        self.sensitivity = float(config.sensitivity)
        self.min_history = int(config.min_history)
        self.model: CameraModel | None = None
        #: What the rule learned, or why it stays silent (for the CLI).
        self.status = "silent: the camera's history has not been loaded"
        # Only the groups this rule's classes fall in need a history.
        self.groups = tuple(g for g in GROUPS if any(group_of(c) == g for c in self.classes))

    def learn(self, history: list[PastTrack]) -> None:
        relevant = [p for p in history if p.label in self.classes]
        self.model = CameraModel.fit(relevant, min_history=self.min_history, groups=self.groups)
        self.status = self.model.status

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        # Paths are judged whole, when their track ends.
        return []

    def track_ended(self, record: TrackRecord, ctx_at: datetime | None, ctx_t: float) -> list[EventChange]:
        if self.model is None or record.label not in self.classes or not record.observations:
            return []
        start_at = wall_time(ctx_at, ctx_t, record.start_t)
        if self.schedule is not None and start_at is not None and not self.schedule.covers(start_at):
            return []
        if self.cooling(record.local_id, record.start_t):
            return []
        points = feet_points(record, self.geometry.size)
        if not judgeable(points):
            return []
        verdict = self.model.judge(record.label, points, self.sensitivity)
        if verdict is None or not verdict.unusual:
            return []
        event = self.new_event(
            cast(FrameContext, _Clock(ctx_t, ctx_at)),
            record.local_id,
            f"{record.label} took an unusual path: {verdict.reason}",
            start_t=record.start_t,
            track_ids=[record.local_id],
            details={**verdict.details(), "label": record.label, "sensitivity": self.sensitivity},
            # The track has left the frame by now: draw where it was last seen.
            highlight=[record.observations[-1].box],
        )
        end = self.end_event(event, record.local_id, record.end_t, wall_time(ctx_at, ctx_t, record.end_t))
        return [EventChange("start", event), end]
