"""Crowd forming: people in a zone (or the whole view) reach a threshold and stay, or grow fast."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

import numpy as np

from camsight.analytics.rules.base import EPS, Event, EventChange, FrameContext, Rule, TrackHistory, wall_time

#: Counts are the median over this many seconds: one missed or doubled detection is not a crowd change.
SMOOTH_SECONDS = 1.0


#: Untracked person boxes at least this confident count towards a crowd.
WEAK_MIN = 0.3


class Crowd(Rule):
    """One event per episode of the crowd condition holding.

    The condition is a count of at least ``threshold`` people, or a density
    of at least ``density`` people per square metre of the zone. It must hold
    for ``min_seconds`` before the event fires (``start_t`` is when it began);
    the event ends after it has not held for ``clear_seconds``. A ``growth``
    of N people within S seconds fires too, even below the threshold. An
    episode lasts at most ``max_seconds``; a crowd still there then gets a
    new event.

    ``details.count`` is the (smoothed) number of people *now*, updated as it
    changes; ``details.peak`` the most at once and ``details.distinct`` how
    many different tracks the episode has seen.

    An acknowledged episode ends when it is acknowledged; while that crowd
    stays, a new event is raised only when it grows beyond the count it had
    then (new people joined). Once it clears, the rule is as new.
    """

    needs_candidates = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        cfg = self.config
        self.zone = self.geometry.zones[cfg.zone] if cfg.zone else None
        self.raw: deque[tuple[float, int]] = deque()
        self.smooth: deque[tuple[float, float]] = deque()
        self.held_since: float | None = None
        self.last_held = float("-inf")
        self.event: Event | None = None
        self.peak = 0.0
        #: The count when the last episode was acknowledged (None: none, or that crowd cleared).
        self.acked_count: float | None = None

    @property
    def place(self) -> str:
        return f"zone '{self.zone.name}'" if self.zone else "view"

    def _threshold(self) -> float:
        """People needed, from the count threshold and/or the density (whichever is lower)."""
        options = []
        if self.config.threshold is not None:
            options.append(float(self.config.threshold))
        if self.config.density is not None and self.zone is not None and self.zone.area_m2:
            options.append(self.config.density * self.zone.area_m2)
        return min(options) if options else float("inf")

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        people = [o for o in self.relevant(ctx.objects) if self.zone is None or self.zone.contains(*o.anchor)]
        # People in a crowd hide each other: many are detected only weakly and never
        # start a track. Count the fairly confident untracked boxes too.
        weak = [
            o
            for o in ctx.candidates
            if o.confidence >= WEAK_MIN and (self.zone is None or self.zone.contains(*o.anchor))
        ]
        t = ctx.t
        self.raw.append((t, len(people) + len(weak)))
        while self.raw and t - self.raw[0][0] > SMOOTH_SECONDS:
            self.raw.popleft()
        count = float(np.median([n for _, n in self.raw]))
        self.smooth.append((t, count))
        horizon = self.config.growth.seconds if self.config.growth else 0.0
        while self.smooth and t - self.smooth[0][0] > max(horizon, SMOOTH_SECONDS):
            self.smooth.popleft()
        threshold = self._threshold()
        held = count >= threshold
        growth = self._growth(t, count)
        if held or growth:
            if self.held_since is None:
                self.held_since = t
            self.last_held = t
        elif t - self.last_held > self.config.clear_seconds:
            self.held_since = None

        ids = [o.track_id for o in people]
        changes: list[EventChange] = []
        event = self.event
        if event is not None:
            self.peak = max(self.peak, count)
            if self.held_since is None or not self.active(ctx):
                changes.append(
                    self.end_event(event, "crowd", self.last_held, wall_time(ctx.at, t, self.last_held))
                )
                event.details["peak"] = self.peak
                self.event = None
                return changes
            if t - event.start_t + EPS >= self.config.max_seconds:
                # Too long for one episode: close it here and start the next one now, without a cooldown.
                changes.append(self.end_event(event, "crowd", t, ctx.at))
                event.details["peak"] = self.peak
                self._quiet_until.pop("crowd", None)
                self.event = None
                self.held_since = t
                if held or growth:
                    changes += self._start(ctx, count, threshold, ids, growth=False)
                return changes
            new = set(ids) - set(event.track_ids) if (held or growth) else set()
            if new or round(count) != round(event.details["count"]):
                event.track_ids = sorted(set(event.track_ids) | new)
                event.details.update(count=count, peak=self.peak, distinct=len(event.track_ids))
                event.summary = f"crowd of {count:.0f} people in the {self.place} (peak {self.peak:.0f})"
                changes.append(EventChange("update", event))
            return changes
        if self.held_since is None:
            self.acked_count = None
        if self.held_since is None or not self.active(ctx) or self.cooling("crowd", t):
            return changes
        if self.acked_count is not None and round(count) <= round(self.acked_count):
            return changes  # the crowd that was acknowledged, no bigger
        if t - self.held_since + EPS < self.config.min_seconds and not growth:
            return changes
        return self._start(ctx, count, threshold, ids, growth=growth)

    def _start(
        self, ctx: FrameContext, count: float, threshold: float, ids: list[int], *, growth: bool
    ) -> list[EventChange]:
        t = ctx.t
        self.peak = count
        density = ""
        details: dict[str, Any] = {
            "count": count,
            "peak": count,
            "distinct": len(set(ids)),
            "threshold": threshold,
            "fired_t": round(t, 3),
        }
        if self.zone is not None and self.zone.area_m2:
            details["density_per_m2"] = round(count / self.zone.area_m2, 3)
            density = f" ({details['density_per_m2']:.2f}/m²)"
        if growth:
            g = self.config.growth
            details["growth"] = {"people": g.people, "seconds": g.seconds}
            summary = (
                f"crowd growing in the {self.place}: {count:.0f} people{density}, "
                f"+{g.people} in {g.seconds:g} s"
            )
        else:
            summary = f"crowd of {count:.0f} people in the {self.place}{density}"
        self.event = self.new_event(
            ctx,
            "crowd",
            summary,
            start_t=self.held_since,
            track_ids=ids,
            zone=self.zone.name if self.zone else None,
            details=details,
        )
        return [EventChange("start", self.event)]

    def _growth(self, t: float, count: float) -> bool:
        g = self.config.growth
        if g is None or not self.smooth:
            return False
        earliest = min(n for s, n in self.smooth if t - s <= g.seconds)
        return count - earliest >= g.people

    def acknowledged(self, event: Event, t: float, at: datetime | None) -> list[EventChange]:
        if self.event is None or self.event.uid != event.uid:
            return []
        ended, self.event = self.event, None
        self.acked_count = float(ended.details["count"])
        # A next episode (the crowd grown) starts after the acknowledgement, not back with this one.
        self.held_since = t
        ended.details.update(peak=self.peak, acknowledged_t=round(t, 3))
        change = self.end_event(ended, "crowd", t, at)
        # More people joining is a new situation at once: no cooldown after an acknowledgement.
        self._quiet_until.pop("crowd", None)
        return [change]

    def finish(self, t: float, at: datetime | None) -> list[EventChange]:
        if self.event is None:
            return []
        event, self.event = self.event, None
        event.details["peak"] = self.peak
        return [self.end_event(event, "crowd", self.last_held, wall_time(at, t, self.last_held))]
