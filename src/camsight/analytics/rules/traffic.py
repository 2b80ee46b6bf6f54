"""Vehicles in lanes: wrong-way driving and erratic driving (swerving, abrupt stops, extreme speed)."""

from __future__ import annotations

from typing import Any

import numpy as np

from camsight.analytics.rules.base import (
    EPS,
    EventChange,
    FrameContext,
    PastTrack,
    Rule,
    TrackHistory,
    motion_words,
)

#: Movement is judged over this window (seconds).
WINDOW = 1.0
#: Moving against the lane: the heading is more than ~115 degrees from the allowed direction.
AGAINST_COS = -0.42


def _lengths(hist: TrackHistory, since: float) -> float:
    return float(np.median([o.length for _, o in hist.states(since)] or [1.0]))


class WrongWayZone(Rule):
    """A vehicle in a lane (a zone with a direction) travelling against it.

    It must keep going the wrong way for ``min_seconds`` and cover
    ``min_distance`` box lengths doing so: a car reversing out of a bay for a
    moment, or a jittering box, is not wrong-way driving. One event per vehicle.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.zone = self.geometry.zones[self.config.zone]
        assert self.zone.direction is not None
        self.direction = np.array(self.zone.direction)
        self.against_since: dict[int, float] = {}
        self.done: set[int] = set()

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        t = ctx.t
        changes: list[EventChange] = []
        for o in self.relevant(ctx.objects):
            tid = o.track_id
            hist = tracks.get(tid)
            if hist is None or tid in self.done or not self.zone.contains(*o.anchor):
                continue
            pts = hist.points(since=t - WINDOW)
            if len(pts) < 2 or pts[-1, 0] - pts[0, 0] < 0.5 * WINDOW:
                continue
            move = pts[-1, 1:] - pts[0, 1:]
            dist = float(np.hypot(*move))
            length = _lengths(hist, t - WINDOW)
            # Standing still (or jitter) says nothing about direction.
            if dist < 0.25 * length:
                continue
            cos = float(move @ self.direction) / dist
            if cos > AGAINST_COS:
                self.against_since.pop(tid, None)
                continue
            since = self.against_since.setdefault(tid, float(pts[0, 0]))
            wrong = hist.points(since=since)
            travelled = float(-(wrong[-1, 1:] - wrong[0, 1:]) @ self.direction) / length
            if t - since + EPS < self.config.min_seconds or travelled < self.config.min_distance:
                continue
            if not self.active(ctx) or self.cooling(tid, t):
                continue
            self.done.add(tid)
            heading = float(np.degrees(np.arctan2(move[1], move[0]))) % 360
            verb, unit = motion_words(o.label)
            event = self.new_event(
                ctx,
                tid,
                f"{o.label} {verb} the wrong way in lane '{self.zone.name}' "
                f"({travelled:.1f} {unit} against the allowed direction)",
                start_t=since,
                track_ids=[tid],
                zone=self.zone.name,
                details={
                    "heading_deg": round(heading, 1),
                    "against_cos": round(cos, 3),
                    "lengths_travelled": round(travelled, 2),
                    "fired_t": round(t, 3),
                },
            )
            changes += [EventChange("start", event), self.end_event(event, tid, t, ctx.at)]
        return changes


def swerves(lateral: np.ndarray, amplitude: float) -> int:
    """Direction changes of a lateral position series, each of at least ``amplitude``.

    A hysteresis turning-point count: noise smaller than ``amplitude`` never
    counts as a change of direction.

    >>> swerves(np.array([0, 1, 0, 1, 0, 1.0]), amplitude=0.5)
    4
    >>> swerves(np.array([0, 0.1, 0, 0.1, 0]), amplitude=0.5)
    0
    """
    if len(lateral) < 3:
        return 0
    turns, direction = 0, 0
    lo = hi = extreme = float(lateral[0])
    for value in lateral[1:]:
        x = float(value)
        if direction == 0:
            lo, hi = min(lo, x), max(hi, x)
            if x - lo >= amplitude:
                direction, extreme = 1, x
            elif hi - x >= amplitude:
                direction, extreme = -1, x
        elif direction > 0:
            if x > extreme:
                extreme = x
            elif extreme - x >= amplitude:
                turns, direction, extreme = turns + 1, -1, x
        elif x < extreme:
            extreme = x
        elif x - extreme >= amplitude:
            turns, direction, extreme = turns + 1, 1, x
    return turns


class ErraticDriving(Rule):
    """Swerving, an abrupt stop, or speed far outside the lane's normal; one event per vehicle.

    Lateral movement is measured across the lane's direction (or the
    vehicle's own mean heading when the rule has no lane). The lane's normal
    speed comes from this camera's past vehicle tracks.
    """

    needs_history = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        cfg = self.config
        self.zone = self.geometry.zones[cfg.zone] if cfg.zone else None
        self.direction = np.array(self.zone.direction) if self.zone and self.zone.direction else None
        self.normal: float | None = None
        #: Vehicles already reported: one event per vehicle.
        self.reported: set[int] = set()

    def learn(self, history: list[PastTrack]) -> None:
        """The lane's normal speed: the median of past vehicles that drove mostly inside it."""
        w, h = self.geometry.size
        speeds = []
        for p in history:
            if p.label not in self.classes or p.speed_bh_s <= 0.05 or not len(p.points):
                continue
            if self.zone is not None:
                inside = [self.zone.contains(x * w, y * h) for _, x, y in p.points]
                if np.mean(inside) < 0.5:
                    continue
            speeds.append(p.speed_bh_s)
        if len(speeds) >= 10:
            self.normal = float(np.median(speeds))

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        t = ctx.t
        changes: list[EventChange] = []
        for o in self.relevant(ctx.objects):
            tid = o.track_id
            hist = tracks.get(tid)
            if hist is None or tid in self.reported:
                continue
            if self.zone is not None and not self.zone.contains(*o.anchor):
                continue
            found = self._swerve(hist, t) or self._abrupt_stop(hist, t) or self._too_fast(hist, t)
            if found is None or not self.active(ctx) or self.cooling(tid, t):
                continue
            kind, since, summary, details = found
            # The checks measure in lengths of the object: a person's is their body.
            summary = summary.replace("vehicle lengths", motion_words(o.label)[1])
            event = self.new_event(
                ctx,
                tid,
                f"{o.label} {summary}",
                start_t=since,
                track_ids=[tid],
                zone=self.zone.name if self.zone else None,
                details={"kind": kind, "fired_t": round(t, 3), **details},
            )
            self.reported.add(tid)
            changes += [EventChange("start", event), self.end_event(event, tid, t, ctx.at)]
        return changes

    def _swerve(self, hist: TrackHistory, t: float) -> tuple | None:
        cfg = self.config
        since = t - cfg.swerve_seconds
        pts = hist.points(since=since)
        if len(pts) < 5:
            return None
        xy = pts[:, 1:]
        direction = self.direction
        if direction is None:
            move = xy[-1] - xy[0]
            norm = float(np.hypot(*move))
            if norm < 1.0:
                return None
            direction = move / norm
        across = np.array([-direction[1], direction[0]])
        # A short moving average: box jitter is not steering.
        lateral = np.convolve(xy @ across, np.ones(3) / 3, mode="valid")
        widths = [min(o.box[2] - o.box[0], o.box[3] - o.box[1]) for _, o in hist.states(since)]
        amplitude = cfg.swerve_amplitude * float(np.median(widths))
        n = swerves(lateral, amplitude)
        if n < cfg.swerves:
            return None
        return (
            "swerving",
            float(pts[0, 0]),
            f"swerving: {n} lateral direction changes in {pts[-1, 0] - pts[0, 0]:.0f} s",
            {"swerves": n, "amplitude_px": round(amplitude, 1)},
        )

    def _abrupt_stop(self, hist: TrackHistory, t: float) -> tuple | None:
        """Speed (lengths/s) that falls below 10% of a brisk earlier speed within ``stop_seconds``."""
        cfg = self.config
        pts = hist.points(since=t - cfg.stop_seconds - 2 * WINDOW)
        if len(pts) < 4:
            return None
        length = _lengths(hist, t - 3 * WINDOW)
        tt, xy = pts[:, 0], pts[:, 1:]
        now = tt >= t - 0.5
        before = tt <= t - cfg.stop_seconds
        if now.sum() < 2 or before.sum() < 2:
            return None
        v_now = float(np.hypot(*(xy[now][-1] - xy[now][0]))) / max(tt[now][-1] - tt[now][0], 1e-6) / length
        b = np.flatnonzero(before)
        v_before = float(np.hypot(*(xy[b[-1]] - xy[b[0]]))) / max(tt[b[-1]] - tt[b[0]], 1e-6) / length
        # Only a vehicle that was really moving (half a length a second) can stop abruptly.
        if v_before < 0.5 or v_now > 0.1 * v_before:
            return None
        return (
            "abrupt_stop",
            float(tt[b[-1]]),
            f"stopped abruptly: from {v_before:.1f} to {v_now:.2f} vehicle lengths/s",
            {"speed_before": round(v_before, 2), "speed_after": round(v_now, 3)},
        )

    def _too_fast(self, hist: TrackHistory, t: float) -> tuple | None:
        if self.normal is None:
            return None
        pts = hist.points(since=t - WINDOW)
        if len(pts) < 3 or pts[-1, 0] - pts[0, 0] < 0.6 * WINDOW:
            return None
        heights = [o.height for _, o in hist.states(t - WINDOW)]
        speed = (
            float(np.hypot(*(pts[-1, 1:] - pts[0, 1:])))
            / (pts[-1, 0] - pts[0, 0])
            / float(np.median(heights))
        )
        if speed < self.config.speed_factor * self.normal:
            return None
        return (
            "speeding",
            float(pts[0, 0]),
            f"moving at {speed / self.normal:.1f}x the lane's normal speed",
            {"speed_bh_s": round(speed, 2), "normal_bh_s": round(self.normal, 2)},
        )
