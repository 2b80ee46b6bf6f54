"""What every behaviour rule sees and produces.

The rules engine feeds each rule one :class:`FrameContext` per analysed
frame (every tracked object with its stable track id, box, feet point and,
when a rule asks for it, posture) plus each track's recent
:class:`TrackHistory`. A rule answers with :class:`EventChange` objects:
a situation started, was updated (more tracks, a higher count) or ended.
The engine stores them, draws snapshots and queues alerts.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from camsight.analytics.geometry import Geometry
from camsight.analytics.schedule import Schedule
from camsight.config import rule_classes, rule_severity
from camsight.records.events import Box, Event, EventChange, PastTrack
from camsight.records.tracks import TrackRecord
from camsight.sources.frame import Frame

#: How much of each track's past the engine keeps for rules (seconds).
HISTORY_SECONDS = 30.0
#: Durations are sums of frame intervals: 0.2 * 5 is not quite 1.0.
EPS = 1e-6


@dataclass(frozen=True, slots=True)
class ObjectState:
    """One tracked object in one analysed frame.

    ``track_id`` is the track's local id in the source (the same id its
    stored track gets); ``detected`` is false when the box was held over a
    frame the motion gate skipped. ``lying`` is the posture score (0-1) of a
    person, filled only when a rule needs posture. ``top_down`` is set on a
    camera that looks straight down (see ``moving_objects.top_down``).
    """

    track_id: int
    label: str
    box: Box
    confidence: float
    detected: bool = True
    lying: float | None = None
    top_down: bool = False

    @property
    def anchor(self) -> tuple[float, float]:
        """Where the object is on the ground: its feet (bottom centre of the box).

        Seen from straight above the bottom edge is just the object's rear (or
        the frame's edge while it drives in), so there it is the box's centre.
        """
        x1, y1, x2, y2 = self.box
        if self.top_down:
            return ((x1 + x2) / 2.0, (y1 + y2) / 2.0)
        return ((x1 + x2) / 2.0, y2)

    @property
    def scale(self) -> float:
        """The object's size for distance margins: its height, or its narrower side from above.

        A car seen from above is as long as half the picture; its width is what
        stays the same whichever way it drives.
        """
        if self.top_down:
            return max(min(self.box[2] - self.box[0], self.box[3] - self.box[1]), 1.0)
        return self.height

    @property
    def centre(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return ((x1 + x2) / 2.0, (y1 + y2) / 2.0)

    @property
    def height(self) -> float:
        return max(self.box[3] - self.box[1], 1.0)

    @property
    def length(self) -> float:
        """The box's longer side: a vehicle's size whichever way it faces."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1], 1.0)


@dataclass(frozen=True)
class FrameContext:
    """Everything rules may look at for one analysed frame."""

    t: float
    #: Wall-clock time of the frame (None when the source has no start time).
    at: datetime | None
    frame: Frame
    objects: list[ObjectState]
    #: False when the motion gate skipped detection (boxes are held over).
    detected: bool = True
    #: Seconds since the previous analysed frame (0 for the first).
    dt: float = 0.0
    #: Weak person detections no track took (track_id -1), for rules with ``needs_candidates``.
    candidates: list[ObjectState] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.frame.gray.shape[:2]
        return (w, h)


class TrackHistory:
    """A track's recent observations, oldest first (bounded to HISTORY_SECONDS)."""

    __slots__ = ("label", "samples", "track_id")

    def __init__(self, track_id: int, label: str) -> None:
        self.track_id = track_id
        self.label = label
        self.samples: deque[tuple[float, ObjectState]] = deque()

    def add(self, t: float, obj: ObjectState) -> None:
        self.samples.append((t, obj))
        self.label = obj.label
        while self.samples and t - self.samples[0][0] > HISTORY_SECONDS:
            self.samples.popleft()

    def points(self, since: float | None = None) -> np.ndarray:
        """(n, 3) array of t, feet x, feet y, from ``since`` on."""
        rows = [(t, *o.anchor) for t, o in self.samples if since is None or t >= since]
        return np.array(rows, np.float64).reshape(-1, 3)

    def states(self, since: float | None = None) -> list[tuple[float, ObjectState]]:
        return [(t, o) for t, o in self.samples if since is None or t >= since]

    @property
    def last(self) -> tuple[float, ObjectState]:
        return self.samples[-1]


#: How objects of a class move and what their size is called, for summaries (vehicles: the default).
_MOTION_WORDS = {
    "person": ("walking", "body lengths"),
    "bicycle": ("riding", "bicycle lengths"),
    "motorcycle": ("riding", "motorcycle lengths"),
}


def motion_words(label: str) -> tuple[str, str]:
    """The verb for how a ``label`` moves and the unit of its size: people walk, vehicles drive.

    >>> motion_words("person"), motion_words("truck")
    (('walking', 'body lengths'), ('driving', 'vehicle lengths'))
    """
    return _MOTION_WORDS.get(label, ("driving", "vehicle lengths"))


def wall_time(ctx_at: datetime | None, ctx_t: float, t: float) -> datetime | None:
    """The wall-clock time of source time ``t``, given a frame's pair (at, t)."""
    if ctx_at is None:
        return None
    return ctx_at + timedelta(seconds=t - ctx_t)


class Rule:
    """Base of every rule: its config, the camera's geometry, schedule and cooldowns.

    Subclasses implement :meth:`update` (and :meth:`track_ended` or
    :meth:`finish` when they need them). ``self.new_event`` and
    ``self.end_event`` keep uids, severities and cooldowns consistent.
    """

    #: Set by rules that need each person's posture (the engine then runs the pose model).
    needs_posture = False
    #: Set by rules that learn the camera's normal from its past tracks (see :meth:`learn`).
    needs_history = False
    #: Set by rules that also look at weak person detections no track took.
    needs_candidates = False

    def __init__(
        self, config: Any, camera: str, geometry: Geometry, schedule: Schedule | None, source_key: str
    ) -> None:
        self.config = config
        self.camera = camera
        self.geometry = geometry
        self.schedule = schedule
        self.source_key = source_key
        self.name = config.display_name()
        self.type: str = config.type
        self.classes = frozenset(rule_classes(config))
        self.severity = rule_severity(config)
        #: subject -> source time until which the rule stays quiet for it
        self._quiet_until: dict[Any, float] = {}

    # -- helpers for subclasses -------------------------------------------------

    def active(self, ctx: FrameContext) -> bool:
        """Whether the rule's schedule covers this frame (always, without one or a clock)."""
        return self.schedule is None or ctx.at is None or self.schedule.covers(ctx.at)

    def relevant(self, objects: Iterable[ObjectState]) -> list[ObjectState]:
        """Objects of the classes this rule applies to."""
        return [o for o in objects if o.label in self.classes]

    def cooling(self, subject: Any, t: float) -> bool:
        """True while ``subject`` is inside the cooldown after its last event."""
        return t < self._quiet_until.get(subject, float("-inf"))

    def new_event(
        self,
        ctx: FrameContext,
        subject: Any,
        summary: str,
        *,
        start_t: float | None = None,
        track_ids: Iterable[int] = (),
        severity: str | None = None,
        **fields: Any,
    ) -> Event:
        """An event for ``subject`` (a track id, a zone...), with a uid stable across re-runs."""
        start = ctx.t if start_t is None else start_t
        key = f"{self.camera}|{self.source_key}|{self.name}|{subject}|{start:.3f}"
        uid = hashlib.sha1(key.encode()).hexdigest()[:32]
        return Event(
            uid=uid,
            camera=self.camera,
            type=self.type,
            rule=self.name,
            severity=severity or self.severity,
            start_t=start,
            start_at=wall_time(ctx.at, ctx.t, start),
            summary=summary,
            track_ids=sorted(set(track_ids)),
            notify=self.config.notify,
            **fields,
        )

    def end_event(self, event: Event, subject: Any, t: float, at: datetime | None) -> EventChange:
        """Close ``event`` at ``t`` and start the subject's cooldown."""
        # An event never ends before it was raised (its last evidence may be older).
        end = max(t, event.start_t, float(event.details.get("fired_t", event.start_t)))
        if at is not None and end != t:
            at = at + timedelta(seconds=end - t)
        event.end_t = end
        event.end_at = at
        self._quiet_until[subject] = event.end_t + self.config.cooldown
        return EventChange("end", event)

    # -- what the engine calls ----------------------------------------------------

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        """Look at one analysed frame; return what changed."""
        raise NotImplementedError

    def learn(self, history: list[PastTrack]) -> None:
        """Called once before the first frame with this camera's past tracks (if ``needs_history``)."""

    def idle(self, t: float, at: datetime | None) -> list[EventChange]:
        """No frame has arrived (a live source stalled); ``t`` is the current source time."""
        return []

    def acknowledged(self, event: Event, t: float, at: datetime | None) -> list[EventChange]:
        """Someone acknowledged ``event`` (still open) at source time ``t``.

        Rules whose events are episodes (a zone occupied, a crowd) close the
        episode here, so that what happens next (new objects entering) raises a
        new event instead of updating one that was already dealt with. Others
        keep the event as it is.
        """
        return []

    def track_ended(self, record: TrackRecord, ctx_at: datetime | None, ctx_t: float) -> list[EventChange]:
        """A track is finished (its full record is known). Most rules ignore this."""
        return []

    def finish(self, t: float, at: datetime | None) -> list[EventChange]:
        """The source ended at ``t``: close whatever is still open."""
        return []
