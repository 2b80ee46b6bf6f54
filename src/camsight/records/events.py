"""What the rules produce, as the store and the alerts see it: events, their changes, line crossings.

Part of the bottom layer, so the store can save what the analytics raised
without importing the analytics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PastTrack:
    """A stored track of this camera, for rules that learn what is normal here."""

    label: str
    #: (n, 3): t (seconds into its source), feet x, feet y, coordinates normalised to 0-1 of the frame.
    points: np.ndarray
    #: Mean speed in box heights per second (independent of distance to the camera).
    speed_bh_s: float


@dataclass
class Event:
    """A situation worth a person's look. Mutable while it is open."""

    uid: str
    camera: str
    type: str
    rule: str
    severity: str
    start_t: float
    start_at: datetime | None
    summary: str
    track_ids: list[int] = field(default_factory=list)
    zone: str | None = None
    line: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    end_t: float | None = None
    end_at: datetime | None = None
    notify: bool = True
    #: Boxes to draw on the snapshot besides the tracks' own (e.g. nothing for tampering).
    highlight: list[Box] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.end_t is None


@dataclass(frozen=True)
class EventChange:
    """``start``: a new event (snapshot taken now); ``update``: tracks or details
    changed; ``end``: the situation is over (``event.end_t`` set)."""

    kind: Literal["start", "update", "end"]
    event: Event


@dataclass(frozen=True)
class Crossing:
    """One object crossing one line; stored for in/out counts."""

    line: str
    direction: str  # "in" | "out"
    label: str
    track_id: int
    t: float
    at: datetime | None = None


@dataclass
class RulesOutput:
    """What one step of the engine produced: event changes, their snapshots and line crossings."""

    changes: list[EventChange] = field(default_factory=list)
    #: Event uid -> annotated BGR picture, for events that started in this step.
    snapshots: dict[str, np.ndarray] = field(default_factory=dict)
    crossings: list[Crossing] = field(default_factory=list)

    def extend(self, other: RulesOutput) -> None:
        self.changes += other.changes
        self.snapshots.update(other.snapshots)
        self.crossings += other.crossings

    def __bool__(self) -> bool:
        return bool(self.changes or self.crossings)
