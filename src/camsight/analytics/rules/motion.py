"""Running / sudden speed: a person moving far faster than is normal for this camera."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from camsight.analytics.rules.base import (
    EPS,
    Event,
    EventChange,
    FrameContext,
    PastTrack,
    Rule,
    TrackHistory,
    wall_time,
)

#: Speed is measured over this window (seconds): long enough to average out box jitter.
WINDOW = 1.0
#: Walking pace in body heights per second (about 1.4 m/s for a 1.7 m person) until history says otherwise.
DEFAULT_NORMAL = 0.8


def speed_bh(hist: TrackHistory, t: float, window: float = WINDOW) -> float | None:
    """Speed of the feet over the last ``window`` seconds, in box heights a second."""
    states = hist.states(since=t - window)
    if len(states) < 3 or states[-1][0] - states[0][0] < 0.6 * window:
        return None
    (t0, a), (t1, b) = states[0], states[-1]
    heights = [o.height for _, o in states]
    dist = float(np.hypot(b.anchor[0] - a.anchor[0], b.anchor[1] - a.anchor[1]))
    return dist / (t1 - t0) / float(np.median(heights))


class Running(Rule):
    """Fires when a person's speed stays above ``factor`` x the camera's normal (and ``min_speed``)
    for ``min_seconds``; one event per person, open while they keep running."""

    needs_history = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.zone = self.geometry.zones[self.config.zone] if self.config.zone else None
        self.normal = DEFAULT_NORMAL
        self.normal_from = "default walking pace"
        self.fast_since: dict[int, float] = {}
        self.events: dict[int, Event] = {}
        self.seen: dict[int, float] = {}

    def learn(self, history: list[PastTrack]) -> None:
        speeds = [p.speed_bh_s for p in history if p.label in self.classes and p.speed_bh_s > 0.05]
        if len(speeds) >= 20:
            # Median of moving people: a few runners in the history do not raise the bar.
            self.normal = float(np.median(speeds))
            self.normal_from = f"median of {len(speeds)} past tracks"

    @property
    def threshold(self) -> float:
        return max(self.config.min_speed, self.config.factor * self.normal)

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        t = ctx.t
        changes: list[EventChange] = []
        for o in self.relevant(ctx.objects):
            if self.zone is not None and not self.zone.contains(*o.anchor):
                continue
            hist = tracks.get(o.track_id)
            speed = speed_bh(hist, t) if hist is not None else None
            if speed is None:
                continue
            tid = o.track_id
            self.seen[tid] = t
            if speed >= self.threshold:
                since = self.fast_since.setdefault(tid, t - WINDOW / 2)
                if tid in self.events:
                    ev = self.events[tid]
                    ev.details["max_speed_bh_s"] = max(ev.details["max_speed_bh_s"], round(speed, 2))
                elif (
                    t - since + EPS >= self.config.min_seconds
                    and self.active(ctx)
                    and not self.cooling(tid, t)
                ):
                    self.events[tid] = ev = self.new_event(
                        ctx,
                        tid,
                        f"{o.label} moving at {speed:.1f} body heights/s, {speed / self.normal:.1f}x this "
                        "camera's normal",
                        start_t=since,
                        track_ids=[tid],
                        zone=self.zone.name if self.zone else None,
                        details={
                            "speed_bh_s": round(speed, 2),
                            "max_speed_bh_s": round(speed, 2),
                            "normal_bh_s": round(self.normal, 2),
                            "normal_from": self.normal_from,
                            "threshold_bh_s": round(self.threshold, 2),
                            "fired_t": round(t, 3),
                        },
                    )
                    changes.append(EventChange("start", ev))
            elif speed < 0.8 * self.threshold:
                self.fast_since.pop(tid, None)
                if tid in self.events:
                    changes.append(self.end_event(self.events.pop(tid), tid, t, ctx.at))
        for tid in [k for k, s in self.seen.items() if t - s > 3.0]:
            last = self.seen.pop(tid)
            self.fast_since.pop(tid, None)
            if tid in self.events:
                changes.append(self.end_event(self.events.pop(tid), tid, last, wall_time(ctx.at, t, last)))
        return changes

    def finish(self, t: float, at: datetime | None) -> list[EventChange]:
        return [self.end_event(self.events.pop(tid), tid, t, at) for tid in list(self.events)]
