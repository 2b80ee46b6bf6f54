"""Fall / person down: upright to down within a short time and staying down; or lying still too long.

What a fall looks like to a fixed camera: a person seen upright, then, a
moment later and at the same place, a box that is lying (wider than tall,
or a torso near horizontal by the pose model) or *collapsed* (the top of the
box has dropped by more than half the standing height while the feet stayed
put). Falling people are hard for detectors and trackers: the box changes
shape too fast to keep the track, and a person on the floor is often found
only with low confidence. So besides tracked people the rule looks at weak,
untracked person boxes (``FrameContext.candidates``) near where someone was
just upright, and attributes them to that person.

A fall needs a *person*: someone tracked standing for a few detected frames
(``MIN_UPRIGHT_OBSERVATIONS``) before going down. A weak box no track took
is never the upright half of a fall (a rock on a lawn is sometimes a
"person" to a detector, and then "lying"), and neither is an object never
seen standing. The event's details carry the evidence: how often and for how
long the person was seen upright, and their posture scores before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

#: Posture thresholds on the "lying" score (0-1): below UPRIGHT is standing or walking.
UPRIGHT = 0.35
LYING = 0.6
#: Collapsed: the box top dropped by this share of the standing height...
DROP = 0.55
#: ...and the box is at most this share of the standing height tall.
SHRINK = 0.75
#: Down observations needed before a fall is reported (one odd box is not a fall).
MIN_DOWN_OBSERVATIONS = 2
#: A subject not seen down for this long is no longer reported as down.
FORGET_SECONDS = 4.0
#: Detected frames a track must be seen upright in before it can fall (or be reported lying).
MIN_UPRIGHT_OBSERVATIONS = 3
#: Posture scores kept per person as evidence.
SCORES_KEPT = 30
#: How long (seconds) and how many places of not-standing "person" boxes are remembered.
FLAT_MEMORY_SECONDS = 120.0
FLAT_PLACES = 200


@dataclass
class _Upright:
    """What has been seen of one tracked person standing: the evidence a fall needs."""

    first_t: float
    last_t: float
    seen: int = 0
    scores: list[float] = field(default_factory=list)

    def add(self, t: float, score: float) -> None:
        self.last_t = t
        self.seen += 1
        self.scores.append(score)
        del self.scores[:-SCORES_KEPT]

    def details(self) -> dict[str, Any]:
        return {
            "upright_observations": self.seen,
            "upright_seconds": round(self.last_t - self.first_t, 3),
            "upright_lying_score": _median(self.scores),
        }


@dataclass
class _Subject:
    """A person who was upright recently, and what has been seen of them since."""

    track_id: int
    upright_t: float
    upright: ObjectState
    down_since: float | None = None
    down_seen: int = 0
    last_down: float = 0.0
    last_seen: float = 0.0
    last_box: tuple[float, float, float, float] | None = None
    #: Tracks seen down that belong to this person (a fall often starts a new track).
    tracks: set[int] = field(default_factory=set)
    #: How this person was seen standing before.
    evidence: _Upright | None = None
    #: Lying scores of the boxes seen down.
    down_scores: list[float] = field(default_factory=list)


def _median(scores: list[float]) -> float | None:
    return round(float(np.median(scores)), 3) if scores else None


def seconds(value: float) -> str:
    """A short duration for a summary: one decimal, two below 0.1 s (a frame at 30 fps is not "0.0 s").

    >>> seconds(0.4), seconds(0.0333), seconds(12.25)
    ('0.4 s', '0.03 s', '12.2 s')
    """
    return f"{value:.2f} s" if value < 0.1 else f"{value:.1f} s"


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def collapsed(obj: ObjectState, upright: ObjectState) -> bool:
    """Whether ``obj`` is the ``upright`` person gone down (top dropped, box shrunk, same place).

    >>> up = ObjectState(1, "person", (100, 50, 140, 180), 0.9)
    >>> collapsed(ObjectState(1, "person", (80, 150, 170, 185), 0.5), up)
    True
    >>> collapsed(ObjectState(1, "person", (102, 60, 141, 182), 0.9), up)
    False
    """
    h_up = upright.height
    drop = (obj.box[1] - upright.box[1]) / h_up
    return drop >= DROP and obj.height <= SHRINK * h_up and near(obj, upright)


def near(obj: ObjectState, upright: ObjectState) -> bool:
    """Whether ``obj`` lies where ``upright`` stood: it spans (or nearly) their feet, at the same depth."""
    h = upright.height
    ux = (upright.box[0] + upright.box[2]) / 2
    return obj.box[0] - 0.5 * h <= ux <= obj.box[2] + 0.5 * h and abs(obj.box[3] - upright.box[3]) <= 0.8 * h


class Fall(Rule):
    """One event per person down: a fall (upright to down within ``fall_seconds``,
    down for ``down_seconds``) or a person lying for ``lying_seconds`` without a seen fall.
    The event stays open while the person is seen down."""

    needs_posture = True
    needs_candidates = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.zone = self.geometry.zones[self.config.zone] if self.config.zone else None
        self.scores: dict[int, list[float]] = {}
        self.subjects: dict[int, _Subject] = {}
        self.lying_since: dict[int, float] = {}
        self.events: dict[int, Event] = {}
        #: Track id -> how it was seen standing (kept while the engine keeps the track's history).
        self.upright_seen: dict[int, _Upright] = {}
        #: Places where a person box that was not standing was seen: [box, first t, last t].
        self.flat: list[list[Any]] = []

    def _smoothed(self, o: ObjectState) -> float:
        s = self.scores.setdefault(o.track_id, [])
        s.append(o.lying if o.lying is not None else 0.0)
        del s[:-3]
        return float(np.median(s))

    def _in_zone(self, o: ObjectState) -> bool:
        return self.zone is None or self.zone.contains(*o.centre)

    def _subject_for(self, o: ObjectState, t: float) -> _Subject | None:
        """The recently upright person this (down) box belongs to."""
        own = self.subjects.get(o.track_id) if o.track_id >= 0 else None
        if own is not None and near(o, own.upright):
            return own
        best = None
        for s in self.subjects.values():
            # Someone already down stays a candidate until forgotten; otherwise only
            # people upright within the fall time can have fallen.
            recent = s.down_since is not None or t - s.upright_t <= self.config.fall_seconds
            if recent and near(o, s.upright) and (best is None or s.upright_t > best.upright_t):
                best = s
        return best

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        t = ctx.t
        changes: list[EventChange] = []
        people = [o for o in self.relevant(ctx.objects) if self._in_zone(o)]
        candidates = [o for o in ctx.candidates if self._in_zone(o)]
        for o in people:
            score = self._smoothed(o)
            upright_box = (o.box[3] - o.box[1]) >= 1.3 * (o.box[2] - o.box[0])
            if score < UPRIGHT and upright_box:
                sub = self.subjects.get(o.track_id)
                if sub is not None and sub.track_id in self.events and sub.down_since is not None:
                    changes.append(self._close(sub.track_id, t, ctx))  # got up
                evidence = self.upright_seen.get(o.track_id)
                if evidence is None:
                    evidence = self.upright_seen[o.track_id] = _Upright(t, t)
                if o.detected:  # a box held over a frame the detector skipped is no new sighting
                    evidence.add(t, score)
                if evidence.seen >= MIN_UPRIGHT_OBSERVATIONS:
                    self.subjects[o.track_id] = _Subject(o.track_id, t, o, last_seen=t, evidence=evidence)
                self.lying_since.pop(o.track_id, None)
                continue
            if score >= LYING:
                self.lying_since.setdefault(o.track_id, t)
            else:
                self.lying_since.pop(o.track_id, None)
            self._down(o, score, t, ctx, changes)
            self._remember_flat(o.box, t)
        for o in candidates:
            # An upright box no track took says nothing about anyone: only tracked people can fall.
            if not ((o.lying or 0.0) < UPRIGHT and o.height >= 1.3 * (o.box[2] - o.box[0])):
                self._down(o, o.lying or 0.0, t, ctx, changes)
                self._remember_flat(o.box, t)
        for tid in [k for k in self.upright_seen if k not in tracks]:
            del self.upright_seen[tid]
        for tid in [k for k in self.scores if k not in tracks]:
            del self.scores[tid]
        self._confirm(ctx, changes)
        # Lying a long time with no fall seen (got down slowly, or fell out of view); only
        # someone seen standing before: a thing that was always flat is not a person down.
        for o in people:
            since = self.lying_since.get(o.track_id)
            if since is None or t - since + EPS < self.config.lying_seconds or o.track_id in self.events:
                continue
            evidence = self.upright_seen.get(o.track_id)
            if evidence is None or evidence.seen < MIN_UPRIGHT_OBSERVATIONS:
                continue  # never seen standing: an object shaped like a lying person, not a person down
            if any(o.track_id in ev.track_ids for ev in self.events.values()):
                continue
            if not self.active(ctx) or self.cooling(o.track_id, t):
                continue
            self.events[o.track_id] = ev = self.new_event(
                ctx,
                o.track_id,
                f"person lying still for {t - since:.0f} s",
                start_t=since,
                track_ids=[o.track_id],
                zone=self.zone.name if self.zone else None,
                details={
                    "kind": "person_down",
                    "lying_t": round(since, 3),
                    "fired_t": round(t, 3),
                    "track_id": o.track_id,
                    **evidence.details(),
                    "down_lying_score": _median(self.scores.get(o.track_id, [])),
                },
            )
            self.subjects.setdefault(
                o.track_id, _Subject(o.track_id, since, o, since, 1, t, t, o.box, evidence=evidence)
            )
            changes.append(EventChange("start", ev))
        self._forget(t, ctx, changes)
        return changes

    def _remember_flat(self, box: tuple[float, float, float, float], t: float) -> None:
        """Note a person box that is not standing, by place (see :meth:`_flat_before`)."""
        for place in self.flat:
            if overlap(box, place[0]) >= 0.5:
                place[0], place[2] = box, t
                break
        else:
            self.flat.append([box, t, t])
        self.flat = [p for p in self.flat if t - p[2] <= FLAT_MEMORY_SECONDS][-FLAT_PLACES:]

    def _flat_before(self, box: tuple[float, float, float, float], t: float) -> bool:
        """Whether a box like ``box`` was already there, not standing, before ``t``.

        Then it is not the fall of someone standing at ``t``: a stone or a bag
        that a detector calls a person, next to where somebody walked past.
        """
        return any(first < t and overlap(box, place) >= 0.5 for place, first, _ in self.flat)

    def _down(
        self, o: ObjectState, score: float, t: float, ctx: FrameContext, changes: list[EventChange]
    ) -> None:
        sub = self._subject_for(o, t)
        if sub is None or t <= sub.upright_t:
            return  # nobody fell here, or the person is seen standing in this very frame
        if not (score >= LYING or collapsed(o, sub.upright)):
            return
        if self._flat_before(o.box, sub.upright_t):
            return
        if sub.down_since is None:
            sub.down_since = t
        sub.down_seen += 1
        sub.down_scores.append(score)
        del sub.down_scores[:-SCORES_KEPT]
        sub.last_down = t
        sub.last_seen = t
        if o.track_id >= 0 and o.track_id != sub.track_id:
            self.scores.pop(o.track_id, None)
        sub.last_box = o.box
        if o.track_id >= 0:
            sub.tracks.add(o.track_id)
        ev = self.events.get(sub.track_id)
        if ev is not None and o.track_id >= 0 and o.track_id not in ev.track_ids:
            ev.track_ids = sorted({*ev.track_ids, o.track_id})
            changes.append(EventChange("update", ev))

    def _confirm(self, ctx: FrameContext, changes: list[EventChange]) -> None:
        """Report falls whose person has stayed down long enough."""
        t = ctx.t
        for sub in self.subjects.values():
            if sub.down_since is None or sub.track_id in self.events:
                continue
            if sub.down_since - sub.upright_t > self.config.fall_seconds:
                continue
            if t - sub.down_since + EPS < self.config.down_seconds or sub.down_seen < MIN_DOWN_OBSERVATIONS:
                continue
            if not self.active(ctx) or self.cooling(sub.track_id, t):
                continue
            went_down = sub.down_since - sub.upright_t
            self.events[sub.track_id] = ev = self.new_event(
                ctx,
                sub.track_id,
                f"person fell (upright to down within {seconds(went_down)}) and is still down "
                f"after {seconds(t - sub.down_since)}",
                start_t=sub.down_since,
                track_ids={tid for tid in sub.tracks | {sub.track_id} if tid >= 0},
                zone=self.zone.name if self.zone else None,
                details={
                    "kind": "fall",
                    "track_id": sub.track_id,
                    "upright_t": round(sub.upright_t, 3),
                    "down_t": round(sub.down_since, 3),
                    "fall_seconds": round(went_down, 3),
                    "fired_t": round(t, 3),
                    "down_observations": sub.down_seen,
                    **(sub.evidence.details() if sub.evidence is not None else {}),
                    "down_lying_score": _median(sub.down_scores),
                },
            )
            if sub.last_box is not None:
                ev.highlight = [sub.last_box]
            changes.append(EventChange("start", ev))

    def _forget(self, t: float, ctx: FrameContext, changes: list[EventChange]) -> None:
        for tid, sub in list(self.subjects.items()):
            last = max(sub.last_seen, sub.last_down, sub.upright_t)
            if tid in self.events and t - max(sub.last_down, sub.upright_t) > FORGET_SECONDS:
                changes.append(self._close(tid, sub.last_down or last, ctx))
                continue
            if tid not in self.events and t - last > max(FORGET_SECONDS, self.config.fall_seconds):
                del self.subjects[tid]
        for tid in [k for k in self.lying_since if k not in {o.track_id for o in ctx.objects}]:
            if t - self.lying_since[tid] > self.config.lying_seconds + FORGET_SECONDS:
                del self.lying_since[tid]

    def _close(self, tid: int, t: float, ctx: FrameContext) -> EventChange:
        event = self.events.pop(tid)
        self.subjects.pop(tid, None)
        return self.end_event(event, tid, t, wall_time(ctx.at, ctx.t, t))

    def finish(self, t: float, at: datetime | None) -> list[EventChange]:
        out = []
        for tid in list(self.events):
            sub = self.subjects.get(tid)
            end = sub.last_down if sub is not None and sub.last_down else t
            out.append(self.end_event(self.events.pop(tid), tid, end, wall_time(at, t, end)))
        return out
