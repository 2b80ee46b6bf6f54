"""Runs one camera's behaviour rules over analysed frames.

>>> from camsight.config import parse_config
>>> cfg = parse_config('''
... cameras:
...   hall:
...     zones: {door: {points: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}}
...     rules: [{type: zone_intrusion, zone: door, min_seconds: 0}]
... ''')
>>> engine = RulesEngine.for_camera(cfg, "hall", (100, 50), source_key="doc")
>>> frame = Frame(1, 0.0, np.zeros((50, 100, 3), np.uint8))
>>> out = engine.update(frame, [(1, "person", (10.0, 10.0, 20.0, 40.0), 0.9)], detected=True, at=None)
>>> [(c.kind, c.event.type, c.event.summary) for c in out.changes]
[('start', 'zone_intrusion', "1 person in zone 'door'")]
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import numpy as np

from camsight.analytics.geometry import Geometry
from camsight.analytics.rules.base import (
    HISTORY_SECONDS,
    EventChange,
    FrameContext,
    ObjectState,
    PastTrack,
    Rule,
    TrackHistory,
)
from camsight.analytics.rules.lines import LineCrossing
from camsight.analytics.schedule import Schedule
from camsight.analytics.snapshot import draw_snapshot
from camsight.config import CameraConfig, Config
from camsight.records.events import Event, RulesOutput
from camsight.records.tracks import TrackRecord
from camsight.sources.frame import Frame
from camsight.vision.detections import PERSON, Detections

log = logging.getLogger(__name__)

#: Rule type -> "module:Class" (imported when a camera uses it).
RULES: dict[str, str] = {
    "zone_intrusion": "camsight.analytics.rules.zones:ZoneIntrusion",
    "dwell": "camsight.analytics.rules.zones:Dwell",
    "stopped_vehicle": "camsight.analytics.rules.zones:StoppedVehicle",
    "line_crossing": "camsight.analytics.rules.lines:LineCrossing",
    "crowd": "camsight.analytics.rules.crowd:Crowd",
    "fall": "camsight.analytics.rules.fall:Fall",
    "running": "camsight.analytics.rules.motion:Running",
    "erratic_driving": "camsight.analytics.rules.traffic:ErraticDriving",
    "tampering": "camsight.analytics.rules.tampering:TamperingDetector",
    "unusual_activity": "camsight.analytics.rules.unusual:UnusualActivity",
}
#: Wrong-way has two forms: along a lane (zone) or across a line.
WRONG_WAY = {
    "zone": "camsight.analytics.rules.traffic:WrongWayZone",
    "line": "camsight.analytics.rules.lines:WrongWayLine",
}

#: Returns the lying score (0-1) of each person box in a frame.
PostureFn = Callable[[np.ndarray, list[tuple[float, float, float, float]]], list[float]]


def _class_for(rule: object) -> type[Rule]:
    path = RULES.get(rule.type) if rule.type != "wrong_way" else WRONG_WAY["zone" if rule.zone else "line"]  # type: ignore[attr-defined]
    module, name = path.split(":")  # type: ignore[union-attr]
    return getattr(importlib.import_module(module), name)


def rules_key(config: Config, camera: str) -> str | None:
    """A short hash of everything that changes what this camera's rules produce (None: no rules)."""
    cam = config.camera(camera)
    if cam is None:
        return None
    # Only what changes analysis: not the stream address or recording settings.
    analysis = cam.model_dump(
        mode="json", by_alias=True, include={"zones", "lines", "rules", "moving_objects", "masks"}
    )
    if not any(r.enabled for r in cam.rules) and not cam.moving_objects and not cam.masks:
        return None
    blob = json.dumps(
        {
            "camera": analysis,
            "schedules": {k: v.model_dump(mode="json") for k, v in config.schedules.items()},
            "timezone": config.timezone,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def box_posture(image: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> list[float]:
    """Lying scores from box shape alone (no pose model)."""
    from camsight.vision.pose import posture

    return [posture(None, b)["lying"] for b in boxes]


def pose_posture(estimator: object) -> PostureFn:
    """Lying scores from the pose model's keypoints, blended with box shape."""
    from camsight.vision.pose import posture

    def score(image: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> list[float]:
        return [posture(estimator.estimate(image, b), b)["lying"] for b in boxes]  # type: ignore[attr-defined]

    return score


#: Weak person boxes at least this confident are offered to rules as untracked candidates.
CANDIDATE_MIN = 0.2


def untracked_people(
    detections: Detections,
    tracked: list[tuple[float, float, float, float]],
    min_confidence: float = CANDIDATE_MIN,
) -> list[tuple[int, str, tuple[float, float, float, float], float]]:
    """Person detections that no tracked box overlaps (IoU < 0.3), as (-1, label, box, confidence).

    >>> boxes = np.array([[0, 0, 10, 20], [50, 0, 60, 20]], np.float32)
    >>> d = Detections(boxes, np.array([0.3, 0.9], np.float32), ("person", "person"))
    >>> untracked_people(d, [(50.0, 0.0, 60.0, 20.0)])
    [(-1, 'person', (0.0, 0.0, 10.0, 20.0), 0.3)]
    """
    keep = (np.array([lab == PERSON for lab in detections.labels], bool)) & (
        detections.confidence >= min_confidence
    )
    if not keep.any():
        return []
    boxes = detections.xyxy[keep].astype(np.float64)
    conf = detections.confidence[keep]
    if tracked:
        tb = np.array(tracked, np.float64)
        x1 = np.maximum(boxes[:, None, 0], tb[None, :, 0])
        y1 = np.maximum(boxes[:, None, 1], tb[None, :, 1])
        x2 = np.minimum(boxes[:, None, 2], tb[None, :, 2])
        y2 = np.minimum(boxes[:, None, 3], tb[None, :, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
        iou = inter / (area(boxes)[:, None] + area(tb)[None, :] - inter + 1e-9)
        free = iou.max(axis=1) < 0.3
        boxes, conf = boxes[free], conf[free]
    return [
        (-1, PERSON, tuple(float(v) for v in b), round(float(c), 3)) for b, c in zip(boxes, conf, strict=True)
    ]


class RulesEngine:
    """One camera's rules, fed frame by frame; keeps each track's recent history for them."""

    def __init__(
        self,
        camera: str,
        rules: list[Rule],
        geometry: Geometry,
        posture: PostureFn | None = None,
        *,
        top_down: bool = False,
    ) -> None:
        self.camera = camera
        self.rules = list(rules)
        self.geometry = geometry
        self.posture = posture or box_posture
        #: The camera looks straight down: objects are placed at their box centre.
        self.top_down = top_down
        self.tracks: dict[int, TrackHistory] = {}
        #: Rule name -> why it was suspended (it raised); those rules are no longer called.
        self.suspended: dict[str, str] = {}
        #: One line per suspended rule, for the indexing summary and a live camera's health.
        self.warnings: list[str] = []
        #: Each rule's open events by uid, so a rule that fails can have them closed for it.
        self._open: dict[int, dict[str, Event]] = {id(r): {} for r in self.rules}
        #: The footage's first frame time and the latest time seen (a frame, or a live stall).
        self._first_t: float | None = None
        self._latest_t: float | None = None
        self._last_t: float | None = None
        self._last_at: datetime | None = None
        self._last_frame: Frame | None = None
        self._last_seen: dict[int, float] = {}

    @property
    def needs_posture(self) -> bool:
        """Whether a (running) rule needs each person's posture."""
        return any(r.needs_posture for r in self.rules)

    @property
    def needs_candidates(self) -> bool:
        """Whether a (running) rule looks at weak untracked person detections."""
        return any(r.needs_candidates for r in self.rules)

    @classmethod
    def for_camera(
        cls,
        config: Config,
        camera: str,
        size: tuple[int, int],
        *,
        source_key: str,
        posture: PostureFn | None = None,
        history: Callable[[], list[PastTrack]] | None = None,
    ) -> RulesEngine | None:
        """The engine for ``camera``'s enabled rules on frames of ``size``; None when it has none.

        Raises ConfigError when the camera's pixel shapes do not fit the frame.
        ``history`` is called (once) only if a rule learns from past tracks.
        """
        cam: CameraConfig | None = config.camera(camera)
        if cam is None:
            return None
        enabled = [r for r in cam.rules if r.enabled]
        if not enabled:
            return None
        geometry = Geometry.build(camera, cam, size)
        rules: list[Rule] = []
        for rule_cfg in enabled:
            schedule = None
            if rule_cfg.schedule is not None:
                sched = (
                    config.schedules[rule_cfg.schedule]
                    if isinstance(rule_cfg.schedule, str)
                    else rule_cfg.schedule
                )
                schedule = Schedule(sched, config.timezone)
            rules.append(_class_for(rule_cfg)(rule_cfg, camera, geometry, schedule, source_key))
        top_down = cam.moving_objects is not None and cam.moving_objects.top_down
        engine = cls(camera, rules, geometry, posture, top_down=top_down)
        if any(r.needs_history for r in rules):
            past = history() if history is not None else []
            for r in [r for r in rules if r.needs_history]:
                try:
                    r.learn(past)
                except Exception as exc:  # one rule's bug never takes the source down
                    engine._suspend(r, "learn", exc, None, None, RulesOutput())
        return engine

    def update(
        self,
        frame: Frame,
        live: Iterable[tuple[int, str, tuple[float, float, float, float], float]],
        *,
        detected: bool,
        at: datetime | None,
        detections: Detections | None = None,
    ) -> RulesOutput:
        """Feed one analysed frame with its tracked objects: (track id, label, box, confidence).

        ``detections`` are the frame's raw detections (None when the motion
        gate skipped the detector); rules that look at weak untracked people use them.
        """
        live = list(live)
        candidates: list[tuple[int, str, tuple[float, float, float, float], float]] = []
        if self.needs_candidates and detections is not None:
            candidates = untracked_people(detections, [box for _, _, box, _ in live])
        everyone = live + candidates
        lying: list[float | None] = [None] * len(everyone)
        if self.needs_posture:
            people = [i for i, (_, label, _, _) in enumerate(everyone) if label == "person"]
            if people:
                scores = self.posture(frame.image, [everyone[i][2] for i in people])
                for i, s in zip(people, scores, strict=True):
                    lying[i] = float(s)
        states = [
            ObjectState(tid, label, box, conf, detected, ly, self.top_down)
            for (tid, label, box, conf), ly in zip(everyone, lying, strict=True)
        ]
        objects, weak = states[: len(live)], states[len(live) :]
        t = frame.t
        dt = 0.0 if self._last_t is None else t - self._last_t
        if self._first_t is None:
            self._first_t = t
        self._latest_t = t if self._latest_t is None else max(self._latest_t, t)
        for o in objects:
            hist = self.tracks.get(o.track_id)
            if hist is None:
                hist = self.tracks[o.track_id] = TrackHistory(o.track_id, o.label)
            hist.add(t, o)
            self._last_seen[o.track_id] = t
        for tid in [k for k, s in self._last_seen.items() if t - s > HISTORY_SECONDS]:
            del self._last_seen[tid], self.tracks[tid]
        ctx = FrameContext(
            t=t, at=at, frame=frame, objects=objects, detected=detected, dt=dt, candidates=weak
        )
        out = RulesOutput()
        for rule in list(self.rules):
            changes = self._call(rule, "update", lambda r=rule: r.update(ctx, self.tracks), out, t, at)
            self._collect(rule, changes, out, frame.image if changes else None, objects)
        self._last_t, self._last_at, self._last_frame = t, at, frame
        return out

    def idle(self, t: float, at: datetime | None) -> RulesOutput:
        """No frame arrived (live source stalled); lets rules such as tampering report video loss."""
        out = RulesOutput()
        # A stall is footage time too: video-loss events run past the last frame.
        self._latest_t = t if self._latest_t is None else max(self._latest_t, t)
        for rule in list(self.rules):
            changes = self._call(rule, "idle", lambda r=rule: r.idle(t, at), out, t, at)
            self._collect(rule, changes, out, None, [])
        return out

    def track_ended(self, record: TrackRecord, source_start: datetime | None) -> RulesOutput:
        """A finished track (for rules judging whole tracks)."""
        out = RulesOutput()
        last = self._last_frame
        for rule in list(self.rules):
            changes = self._call(
                rule,
                "track_ended",
                lambda r=rule: r.track_ended(record, source_start, 0.0),
                out,
                self._last_t,
                self._last_at,
            )
            # The picture is the latest frame, with the track's path drawn on it.
            for change in changes:
                if change.kind == "start":
                    change.event.highlight = [
                        o.box for o in record.observations[:: max(1, len(record.observations) // 8)]
                    ]
            self._collect(rule, changes, out, last.image if (changes and last is not None) else None, [])
        return out

    @property
    def open_uids(self) -> set[str]:
        """The uids of every event the rules still have open."""
        return {uid for opened in self._open.values() for uid in opened}

    def acknowledge(self, uids: Iterable[str]) -> RulesOutput:
        """Tell the rules that these open events were acknowledged (at the latest frame's time).

        Episode rules (zones, crowds) end an acknowledged episode, so objects
        entering afterwards raise a new event; what they return is stored like
        any other change.
        """
        out = RulesOutput()
        wanted = set(uids)
        t, at = self._last_t, self._last_at
        if t is None or not wanted:
            return out
        for rule in list(self.rules):
            for event in [e for uid, e in self._open.get(id(rule), {}).items() if uid in wanted]:
                changes = self._call(
                    rule, "acknowledged", lambda r=rule, e=event: r.acknowledged(e, t, at), out, t, at
                )
                self._collect(rule, changes, out, None, [])
        return out

    def finish(self, t: float | None = None, at: datetime | None = None) -> RulesOutput:
        """The source ended: close every open event (at the last frame's time by default)."""
        t = self._last_t if t is None else t
        at = self._last_at if at is None and t == self._last_t else at
        out = RulesOutput()
        if t is None:
            return out
        for rule in list(self.rules):
            changes = self._call(rule, "finish", lambda r=rule: r.finish(t, at), out, t, at)
            self._collect(rule, changes, out, None, [])
        return out

    # ------------------------------------------------------------------ one rule's failure

    def _call(
        self,
        rule: Rule,
        what: str,
        call: Callable[[], list[EventChange]],
        out: RulesOutput,
        t: float | None,
        at: datetime | None,
    ) -> list[EventChange]:
        """``call`` (one of ``rule``'s methods); if it raises, the rule is suspended and [] returned."""
        try:
            return list(call())
        except Exception as exc:  # a bug in one rule must not stop the source or the other rules
            self._suspend(rule, what, exc, t, at, out)
            return []

    def _suspend(
        self,
        rule: Rule,
        what: str,
        exc: BaseException,
        t: float | None,
        at: datetime | None,
        out: RulesOutput,
    ) -> None:
        """Stop calling ``rule`` for this source, close its open events, and say so once."""
        where = f" at {t:.1f} s" if t is not None else ""
        why = f"{type(exc).__name__}: {exc}".splitlines()[0]
        message = (
            f"rule '{rule.name}' stopped after an error{where} ({why}); "
            "its open events were closed and the other rules went on"
        )
        # Logged once, with the traceback: the rule is never called again for this source.
        log.error(
            "rule failed and is suspended for this source",
            exc_info=exc,
            extra={"camera": self.camera, "rule": rule.name, "during": what, "error": why},
        )
        self.rules = [r for r in self.rules if r is not rule]
        self.suspended[rule.name] = message
        self.warnings.append(message)
        if t is None:
            t, at = self._last_t, self._last_at
        if t is None:
            return
        # Let the rule close its own events if it still can; whatever stays open is closed here.
        try:
            closing = [c for c in rule.finish(t, at) if c.kind == "end"]
        except Exception:
            log.debug("suspended rule could not close its events", exc_info=True)
            closing = []
        opened = self._open.get(id(rule), {})
        closing = [c for c in closing if c.event.uid in opened]
        closed = {c.event.uid for c in closing}
        for uid, event in opened.items():
            if uid not in closed:
                event.end_t = max(t, event.start_t)
                event.end_at = wall_clock_from(at, t, event.end_t)
                closing.append(EventChange("end", event))
        self._collect(rule, closing, out, None, [])

    def _clamp(self, event: Event) -> None:
        """Keep the event's times inside the footage: [first frame, latest time seen].

        Rules date a situation back to evidence (a window of history, a smoothing
        interval), which can reach before the first frame.
        """
        lo, hi = self._first_t, self._latest_t
        if lo is None or hi is None:
            return
        start = min(max(event.start_t, lo), hi)
        if start != event.start_t:
            if event.start_at is not None:
                event.start_at += timedelta(seconds=start - event.start_t)
            event.start_t = start
        if event.end_t is not None:
            end = min(max(event.end_t, start), hi)
            if end != event.end_t:
                if event.end_at is not None:
                    event.end_at += timedelta(seconds=end - event.end_t)
                event.end_t = end

    def _collect(
        self,
        rule: Rule,
        changes: list[EventChange],
        out: RulesOutput,
        image: np.ndarray | None,
        objects: list[ObjectState],
    ) -> None:
        out.changes += changes
        opened = self._open.setdefault(id(rule), {})
        for change in changes:
            self._clamp(change.event)
            if change.kind == "end":
                opened.pop(change.event.uid, None)
            elif change.event.open:
                opened[change.event.uid] = change.event
            if change.kind == "start" and image is not None:
                out.snapshots[change.event.uid] = draw_snapshot(
                    image, self.geometry, change.event, objects, change.event.highlight
                )
            if change.kind == "start":
                log.info(
                    "event",
                    extra={"camera": self.camera, "type": change.event.type, "summary": change.event.summary},
                )
        if isinstance(rule, LineCrossing) and rule.found:
            out.crossings += rule.found
            rule.found = []


def wall_clock(start: datetime | None, t: float) -> datetime | None:
    """``start`` plus ``t`` seconds (None without a start)."""
    return None if start is None else start + timedelta(seconds=t)


def wall_clock_from(at: datetime | None, at_t: float, t: float) -> datetime | None:
    """The wall-clock time of source time ``t``, given the pair (``at``, ``at_t``)."""
    return None if at is None else at + timedelta(seconds=t - at_t)
