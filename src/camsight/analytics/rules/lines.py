"""Line crossings with direction, counted in and out, and wrong-way crossings."""

from __future__ import annotations

from typing import Any

from camsight.analytics.geometry import Line
from camsight.analytics.rules.base import EventChange, FrameContext, ObjectState, Rule, TrackHistory
from camsight.records.events import Crossing


class CrossingTracker:
    """Finds line crossings of tracks' feet points, with hysteresis.

    A track's side of the line changes only once its feet are ``margin``
    box heights (from above: box widths, see ``ObjectState.scale``) past it,
    so a person standing on the line, whose box jitters by a few pixels, is
    not counted again and again.

    >>> from camsight.analytics.geometry import Line
    >>> tracker = CrossingTracker(Line("gate", (0, 50), (100, 50), (0.0, 1.0), "both"))
    >>> box = lambda y: ObjectState(1, "person", (40, y - 20, 50, y), 0.9)
    >>> [tracker.update(box(y), t) for t, y in enumerate([40, 49, 51, 49, 58])]
    [None, None, None, None, 'in']
    """

    def __init__(self, line: Line, margin: float = 0.2) -> None:
        self.line = line
        self.margin = margin
        #: track id -> last feet point firmly on one side
        self.anchor: dict[int, tuple[float, float]] = {}
        self.seen: dict[int, float] = {}
        self.last_point: dict[int, tuple[float, float]] = {}
        self.handoff_seconds = 2.0

    def update(self, obj: ObjectState, t: float) -> str | None:
        p = obj.anchor
        side = self.line.side(*p)
        self.seen[obj.track_id] = t
        self.last_point[obj.track_id] = p
        if abs(side) < self.margin * obj.scale:
            return None
        last = self.anchor.get(obj.track_id)
        if last is None:
            last = self._handoff(obj, t)
        self.anchor[obj.track_id] = p
        if last is None:
            return None
        return self.line.crossing(last, p)

    def _handoff(self, obj: ObjectState, t: float) -> tuple[float, float] | None:
        """The side of a track lost just now near ``obj``: the tracker often gives a person
        a new id mid-crossing, and the crossing must still count (once)."""
        x, y = obj.anchor
        best: tuple[float, int] | None = None
        for tid, seen in self.seen.items():
            if tid == obj.track_id or seen >= t or t - seen > self.handoff_seconds or tid not in self.anchor:
                continue
            ax, ay = self.last_point.get(tid, self.anchor[tid])
            dist = ((ax - x) ** 2 + (ay - y) ** 2) ** 0.5
            if dist <= 1.5 * obj.scale and (best is None or dist < best[0]):
                best = (dist, tid)
        if best is None:
            return None
        return self.anchor[best[1]]

    def forget(self, t: float, after: float = 10.0) -> None:
        for tid in [k for k, s in self.seen.items() if t - s > after]:
            del self.seen[tid]
            self.anchor.pop(tid, None)
            self.last_point.pop(tid, None)


class LineCrossing(Rule):
    """Every crossing of the line is counted; those in ``direction`` raise an (instant) event."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.line = self.geometry.lines[self.config.line]
        self.crossings = CrossingTracker(self.line)
        #: Crossings found since the engine last collected them.
        self.found: list[Crossing] = []
        self.counts = {"in": 0, "out": 0}

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        changes: list[EventChange] = []
        for o in self.relevant(ctx.objects):
            direction = self.crossings.update(o, ctx.t)
            if direction is None:
                continue
            self.counts[direction] += 1
            self.found.append(Crossing(self.line.name, direction, o.label, o.track_id, ctx.t, ctx.at))
            if (
                self.config.direction in (direction, "both")
                and self.active(ctx)
                and not self.cooling(o.track_id, ctx.t)
            ):
                changes.extend(self._instant(ctx, o, direction))
        self.crossings.forget(ctx.t)
        return changes

    def _instant(self, ctx: FrameContext, o: ObjectState, direction: str) -> list[EventChange]:
        event = self.new_event(
            ctx,
            o.track_id,
            f"{o.label} crossed line '{self.line.name}' going {direction}",
            track_ids=[o.track_id],
            line=self.line.name,
            details={"direction": direction, "in_total": self.counts["in"], "out_total": self.counts["out"]},
        )
        return [EventChange("start", event), self.end_event(event, o.track_id, ctx.t, ctx.at)]


class WrongWayLine(Rule):
    """A vehicle crossing a line against its allowed direction."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.line = self.geometry.lines[self.config.line]
        self.crossings = CrossingTracker(self.line)

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        changes: list[EventChange] = []
        for o in self.relevant(ctx.objects):
            direction = self.crossings.update(o, ctx.t)
            if direction is None or direction == self.line.allowed:
                continue
            if not self.active(ctx) or self.cooling(o.track_id, ctx.t):
                continue
            event = self.new_event(
                ctx,
                o.track_id,
                f"{o.label} crossed line '{self.line.name}' the wrong way (going {direction}, "
                f"allowed {self.line.allowed})",
                track_ids=[o.track_id],
                line=self.line.name,
                details={"direction": direction, "allowed": self.line.allowed},
            )
            changes += [EventChange("start", event), self.end_event(event, o.track_id, ctx.t, ctx.at)]
        self.crossings.forget(ctx.t)
        return changes
