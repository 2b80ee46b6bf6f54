"""Rules about objects inside zones: intrusion, dwell (loitering) and stopped vehicles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from camsight.analytics.rules.base import (
    EPS,
    Event,
    EventChange,
    FrameContext,
    ObjectState,
    Rule,
    TrackHistory,
    wall_time,
)


class Presence:
    """When each subject arrived, forgiving absences up to ``gap`` seconds.

    Detections flicker: a person missed for one frame has not left.

    >>> p = Presence(gap=1.0)
    >>> p.update(0.0, {7}); p.update(0.5, set()); p.update(0.9, {7})
    >>> p.since[7], p.present(7, 1.5)
    (0.0, True)
    """

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self.since: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def update(self, t: float, inside: set[int]) -> None:
        for key in inside:
            if key not in self.since or t - self.last[key] > self.gap:
                self.since[key] = t
            self.last[key] = t
        for key in [k for k, last in self.last.items() if t - last > self.gap]:
            del self.since[key], self.last[key]

    def present(self, key: int, t: float) -> bool:
        return key in self.last and t - self.last[key] <= self.gap

    def duration(self, key: int) -> float:
        return self.last[key] - self.since[key]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _ZoneRule(Rule):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.zone = self.geometry.zones[self.config.zone]

    def inside(self, ctx: FrameContext) -> list[ObjectState]:
        return [o for o in self.relevant(ctx.objects) if self.zone.contains(*o.anchor)]


class ZoneIntrusion(_ZoneRule):
    """One event per episode of the zone being occupied by objects of the rule's classes.

    An object must be inside for ``min_seconds``; the episode ends once the
    zone has been clear for ``clear_seconds``, so people coming and going in
    a busy zone make one event, not one each. An episode lasts at most
    ``max_seconds``: a zone that stays occupied gets a new event then.

    ``details.count`` is how many objects are in the zone *now* (updated as it
    changes), ``details.distinct`` how many different tracks the episode has
    seen and ``details.peak`` the most at once. After an episode ends, its own
    objects coming back within the cooldown are the same situation; any other
    object entering starts a new event at once.

    An acknowledged episode ends when it is acknowledged: the objects inside
    then have been seen to, and raise nothing more while they stay; the next
    object to enter starts a new event.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.presence = Presence(gap=1.0)
        self.event: Event | None = None
        self.last_inside = 0.0
        #: The tracks of the last ended episode: only they are kept quiet by the cooldown.
        self.ended_ids: set[int] = set()
        #: Tracks inside when the last episode was acknowledged (kept while they stay inside).
        self.acked_ids: set[int] = set()

    def _present(self, t: float) -> list[int]:
        """Tracks in the zone now (a miss shorter than the presence gap is not leaving) for min_seconds."""
        return sorted(
            k
            for k in self.presence.since
            if self.presence.present(k, t) and self.presence.duration(k) + EPS >= self.config.min_seconds
        )

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        t = ctx.t
        objs = self.inside(ctx)
        self.presence.update(t, {o.track_id for o in objs})
        qualified = [o for o in objs if self.presence.duration(o.track_id) + EPS >= self.config.min_seconds]
        changes: list[EventChange] = []
        if qualified:
            self.last_inside = t
        present = self._present(t) if qualified else []
        # Acknowledged objects stop being "already seen to" once they leave.
        self.acked_ids &= {k for k in self.presence.since if self.presence.present(k, t)}
        event = self.event
        if event is not None:
            if not self.active(ctx) or t - self.last_inside > self.config.clear_seconds:
                changes.append(self._end(event, self.last_inside, ctx))
                return changes
            if t - event.start_t + EPS >= self.config.max_seconds:
                # Too long for one episode: close it here; who is still inside starts the next one.
                changes.append(self._end(event, t, ctx))
                # The situation goes on: no cooldown between the two events.
                self._quiet_until.pop("zone", None)
                self.ended_ids = set()
                if present:
                    changes += self._start(ctx, present, tracks)
                return changes
            if qualified:
                self._refresh(event, present, tracks, changes)
            return changes
        if not qualified or not self.active(ctx):
            return changes
        if self.cooling("zone", t) and set(present) <= self.ended_ids:
            return changes  # the objects of the episode that just ended, back within the cooldown
        if set(present) <= self.acked_ids:
            return changes  # nobody new since the acknowledgement
        return self._start(ctx, present, tracks)

    def acknowledged(self, event: Event, t: float, at: datetime | None) -> list[EventChange]:
        if self.event is None or self.event.uid != event.uid:
            return []
        ended, self.event = self.event, None
        self.acked_ids = {k for k in self.presence.since if self.presence.present(k, t)}
        ended.details["acknowledged_t"] = round(t, 3)
        change = self.end_event(ended, "zone", t, at)
        # Whoever enters next is a new situation, cooldown or not; those inside stay quiet.
        self._quiet_until.pop("zone", None)
        self.ended_ids = set()
        return [change]

    def _start(
        self, ctx: FrameContext, present: list[int], tracks: dict[int, TrackHistory]
    ) -> list[EventChange]:
        first = min(self.presence.since[k] for k in present)
        self.event = self.new_event(
            ctx,
            "zone",
            self._summary(present, present, tracks),
            track_ids=present,
            zone=self.zone.name,
            details={
                "count": len(present),
                "distinct": len(present),
                "peak": len(present),
                "entered_t": round(first, 3),
                "fired_t": round(ctx.t, 3),
            },
        )
        return [EventChange("start", self.event)]

    def _refresh(
        self, event: Event, present: list[int], tracks: dict[int, TrackHistory], changes: list[EventChange]
    ) -> None:
        """Update the event when who is inside changed: the current count, not a running total."""
        new = set(present) - set(event.track_ids)
        count = len(present)
        if not new and count == event.details.get("count"):
            return
        event.track_ids = sorted(set(event.track_ids) | new)
        event.details["count"] = count
        event.details["distinct"] = len(event.track_ids)
        event.details["peak"] = max(int(event.details.get("peak", 0)), count)
        event.summary = self._summary(present, event.track_ids, tracks)
        changes.append(EventChange("update", event))

    def _end(self, event: Event, end: float, ctx: FrameContext) -> EventChange:
        self.event = None
        self.ended_ids = set(event.track_ids)
        return self.end_event(event, "zone", end, wall_time(ctx.at, ctx.t, end))

    def _summary(self, present: list[int], seen: list[int], tracks: dict[int, TrackHistory]) -> str:
        labels = sorted({tracks[i].label for i in present if i in tracks}) or ["object"]
        text = f"{_plural(len(present), '/'.join(labels))} in zone '{self.zone.name}'"
        if len(seen) > len(present):
            text += f" ({len(seen)} different in this episode)"
        return text

    def finish(self, t: float, at: datetime | None) -> list[EventChange]:
        if self.event is None:
            return []
        event, self.event = self.event, None
        return [self.end_event(event, "zone", self.last_inside, wall_time(at, t, self.last_inside))]


class _PerTrackZoneRule(_ZoneRule):
    """A situation per track inside the zone, with the event kept open while it lasts."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.events: dict[int, Event] = {}
        self.seen: dict[int, float] = {}
        #: Where recently ended situations were: a track that restarts there is the same subject.
        self.ended: list[tuple[float, tuple[float, float], float]] = []

    def close(self, track_id: int, t: float, ctx: FrameContext) -> EventChange:
        event = self.events.pop(track_id)
        return self.end_event(event, track_id, t, wall_time(ctx.at, ctx.t, t))

    def recently_ended_here(self, obj: ObjectState, t: float) -> bool:
        """Whether a situation ended near ``obj`` within the cooldown (a track that was cut in two)."""
        self.ended = [e for e in self.ended if t - e[0] <= self.config.cooldown]
        x, y = obj.anchor
        return any(np.hypot(x - ex, y - ey) <= 1.5 * h for _, (ex, ey), h in self.ended)

    def finish(self, t: float, at: datetime | None) -> list[EventChange]:
        out = []
        for track_id in list(self.events):
            event = self.events.pop(track_id)
            end = self.seen.get(track_id, t)
            out.append(self.end_event(event, track_id, end, wall_time(at, t, end)))
        return out


class Dwell(_PerTrackZoneRule):
    """Loitering: a track inside the zone for ``min_seconds`` (0: at once).

    An event lasts at most ``max_seconds``; someone still there then gets a new one.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.presence = Presence(gap=self.config.gap_seconds)
        #: Tracks whose event was closed at max_seconds while they stayed: track id -> when.
        self.continued: dict[int, float] = {}

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        objs = self.inside(ctx)
        self.presence.update(ctx.t, {o.track_id for o in objs})
        changes: list[EventChange] = []
        for o in objs:
            self.seen[o.track_id] = ctx.t
        for track_id in list(self.events):
            if not self.presence.present(track_id, ctx.t) or not self.active(ctx):
                event = self.events[track_id]
                changes.append(self.close(track_id, self.seen[track_id], ctx))
                last = tracks.get(track_id)
                if last is not None:
                    _, obj = last.last
                    self.ended.append((ctx.t, obj.anchor, obj.height))
                event.details["dwell_seconds"] = round(event.end_t - event.details["entered_t"], 1)  # type: ignore[operator]
            else:
                event = self.events[track_id]
                event.details["dwell_seconds"] = round(ctx.t - event.details["entered_t"], 1)
                if ctx.t - event.start_t + EPS >= self.config.max_seconds:
                    # Too long for one event: close it; the stay goes on in a new one, from now.
                    changes.append(self.close(track_id, ctx.t, ctx))
                    self._quiet_until.pop(track_id, None)
                    self.continued[track_id] = ctx.t
        for tid in [k for k in self.continued if not self.presence.present(k, ctx.t)]:
            del self.continued[tid]
        if not self.active(ctx):
            return changes
        for o in objs:
            tid = o.track_id
            resumed = self.continued.pop(tid, None)
            if resumed is None and (tid in self.events or self.cooling(tid, ctx.t)):
                continue
            stay = self.presence.duration(tid)
            if resumed is None and stay + EPS < self.config.min_seconds:
                continue
            if resumed is None and self.recently_ended_here(o, ctx.t):
                continue
            since = self.presence.since[tid] if resumed is None else resumed
            label = tracks[tid].label if tid in tracks else o.label
            what = "entered" if self.config.min_seconds == 0 else f"has stayed {stay:.0f} s in"
            self.events[tid] = event = self.new_event(
                ctx,
                tid,
                f"{label} {what} zone '{self.zone.name}'",
                start_t=since,
                track_ids=[tid],
                zone=self.zone.name,
                details={
                    "entered_t": round(self.presence.since[tid], 3),
                    "fired_t": round(ctx.t, 3),
                    "dwell_seconds": round(stay, 1),
                },
            )
            changes.append(EventChange("start", event))
        return changes


class StoppedVehicle(_PerTrackZoneRule):
    """A vehicle standing (speed below ``max_speed`` box lengths a second) in a zone for ``min_seconds``."""

    WINDOW = 1.0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.still_since: dict[int, float] = {}

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        changes: list[EventChange] = []
        inside = {o.track_id: o for o in self.inside(ctx)}
        for tid, o in inside.items():
            self.seen[tid] = ctx.t
            hist = tracks.get(tid)
            speed = _speed_lengths(hist, ctx.t, self.WINDOW, o.length) if hist is not None else None
            if speed is None:
                continue
            if speed <= self.config.max_speed:
                # Still over the window that was measured, which never reaches before the track began.
                self.still_since.setdefault(tid, max(ctx.t - self.WINDOW, hist.samples[0][0]))
            else:
                self.still_since.pop(tid, None)
        for tid in list(self.still_since):
            if tid not in inside and ctx.t - self.seen.get(tid, ctx.t) > 2.0:
                del self.still_since[tid]
        for tid in list(self.events):
            if tid not in self.still_since or not self.active(ctx):
                changes.append(self.close(tid, self.seen.get(tid, ctx.t), ctx))
        if not self.active(ctx):
            return changes
        for tid, since in self.still_since.items():
            if tid in self.events or tid not in inside or self.cooling(tid, ctx.t):
                continue
            if ctx.t - since + EPS < self.config.min_seconds:
                continue
            label = tracks[tid].label if tid in tracks else "vehicle"
            self.events[tid] = event = self.new_event(
                ctx,
                tid,
                f"{label} stopped in zone '{self.zone.name}' for {ctx.t - since:.0f} s",
                start_t=since,
                track_ids=[tid],
                zone=self.zone.name,
                details={"stopped_t": round(since, 3), "fired_t": round(ctx.t, 3)},
            )
            changes.append(EventChange("start", event))
        return changes


def _speed_lengths(hist: TrackHistory, t: float, window: float, length: float) -> float | None:
    """Speed over the last ``window`` seconds in box lengths a second (None: too little history)."""
    pts = hist.points(since=t - window)
    if len(pts) < 2 or pts[-1, 0] - pts[0, 0] < 0.5 * window:
        return None
    dist = float(np.hypot(*(pts[-1, 1:] - pts[0, 1:])))
    return dist / (pts[-1, 0] - pts[0, 0]) / max(length, 1.0)
