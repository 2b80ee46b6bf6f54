"""Configuration of cameras' zones, lines, schedules and behaviour rules.

A camera's block in the YAML config::

    cameras:
      parking:
        size: [768, 432]            # optional: pixel coordinates are checked against it
        zones:
          bays: {points: [[0.05, 0.45], [0.95, 0.45], [0.95, 1.0], [0.05, 1.0]]}
          lane: {points: [[...]], direction: down}     # a lane: allowed travel direction
        lines:
          gate: {points: [[0.2, 0.5], [0.8, 0.5]], in: down}
        rules:
          - {type: zone_intrusion, zone: bays, classes: [person], min_seconds: 1, schedule: night}
          - {type: line_crossing, line: gate}

Coordinates are normalised (0-1) when every value is within 0..1 and
``units`` is not ``pixels``; otherwise they are pixels of the camera's frame.
Each rule describes an observable situation (an object in a zone, a count
over a threshold, a posture change); none scores a person's intent.
"""

from __future__ import annotations

import math
import re
from datetime import time as dtime
from typing import Annotated, Literal

import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Point = tuple[float, float]
Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
Units = Literal["auto", "normalised", "pixels"]
#: Directions in the picture, as users say them; degrees use image axes (0 = right, 90 = down).
COMPASS: dict[str, float] = {"right": 0.0, "down": 90.0, "left": 180.0, "up": 270.0}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PEOPLE = ("person",)
VEHICLES = ("car", "motorcycle", "bus", "truck")
TRACKED_CLASSES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def direction_degrees(value: str | float) -> float:
    """A direction given as a word (``down``) or degrees, as degrees in [0, 360).

    >>> direction_degrees("down"), direction_degrees(-90)
    (90.0, 270.0)
    """
    if isinstance(value, str):
        return COMPASS[value]
    return float(value) % 360.0


Direction = Literal["right", "down", "left", "up"] | Annotated[float, Field(ge=-360, le=360)]


def _normalised(points: list[Point], units: Units) -> bool:
    if units == "auto":
        return all(0.0 <= c <= 1.0 for p in points for c in p)
    return units == "normalised"


def _check_bounds(points: list[Point], units: Units) -> None:
    if units == "normalised":
        bad = [p for p in points if not all(0.0 <= c <= 1.0 for c in p)]
        if bad:
            raise ValueError(f"point {list(bad[0])} is outside the frame (normalised coordinates are 0-1)")
    bad = [p for p in points if any(c < 0 for c in p)]
    if bad:
        raise ValueError(f"point {list(bad[0])} is outside the frame (negative coordinate)")


class ZoneConfig(_Strict):
    """A polygon; with ``direction`` it is a lane with an allowed direction of travel."""

    points: Annotated[list[Point], Field(min_length=3, max_length=256)]
    units: Units = "auto"
    direction: Direction | None = None
    #: Floor area in square metres, for crowd density (people per m²).
    area_m2: Annotated[float, Field(gt=0)] | None = None

    @field_validator("points")
    @classmethod
    def _finite(cls, points: list[Point]) -> list[Point]:
        if not all(math.isfinite(c) for p in points for c in p):
            raise ValueError("coordinates must be finite numbers")
        return points

    @model_validator(mode="after")
    def _simple_polygon(self) -> ZoneConfig:
        _check_bounds(self.points, self.units)
        poly = shapely.Polygon(self.points)
        if poly.convex_hull.area <= 0:
            raise ValueError("the polygon has no area (its points are on one line)")
        reason = shapely.is_valid_reason(poly)
        if "Self-intersection" in reason or "Ring Self-intersection" in reason:
            raise ValueError(
                f"the polygon intersects itself ({reason}); list its points in order around the edge"
            )
        if poly.area <= 0:
            raise ValueError("the polygon has no area (its points are on one line)")
        if not poly.is_valid:
            raise ValueError(f"the polygon is not valid ({reason})")
        return self

    @property
    def normalised(self) -> bool:
        return _normalised(self.points, self.units)


class LineConfig(_Strict):
    """A line from its first point to its second.

    ``in`` names the direction of travel (in the picture) that counts as
    coming in; crossings the other way count as going out. ``allowed`` is the
    direction traffic may cross in, for wrong-way rules.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    points: tuple[Point, Point]
    units: Units = "auto"
    in_: Direction = Field("down", alias="in")
    allowed: Literal["in", "out", "both"] = "both"

    @model_validator(mode="after")
    def _length(self) -> LineConfig:
        if not all(math.isfinite(c) for p in self.points for c in p):
            raise ValueError("coordinates must be finite numbers")
        _check_bounds(list(self.points), self.units)
        (x1, y1), (x2, y2) = self.points
        length = math.hypot(x2 - x1, y2 - y1)
        if length == 0:
            raise ValueError("the line has zero length (both points are the same)")
        # The "in" direction must actually cross the line, not run along it.
        angle = math.radians(direction_degrees(self.in_))
        along = abs((x2 - x1) * math.cos(angle) + (y2 - y1) * math.sin(angle)) / length
        if along > 0.95:
            raise ValueError(f"'in: {self.in_}' runs along the line instead of across it")
        return self

    @property
    def normalised(self) -> bool:
        return _normalised(list(self.points), self.units)


_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ScheduleConfig(_Strict):
    """When a rule is active: days of the week and hour ranges (local time).

    ``hours: ["18:00-06:00"]`` runs past midnight; an empty list means all day.
    """

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(DAYS)
    )
    hours: list[str] = Field(default_factory=list)

    @field_validator("hours")
    @classmethod
    def _ranges(cls, hours: list[str]) -> list[str]:
        for text in hours:
            m = _HOURS.match(text)
            if not m:
                raise ValueError(f"'{text}' is not an hour range like 18:00-06:00")
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
                raise ValueError(f"'{text}' is not an hour range like 18:00-06:00")
            if (h1, m1) == (h2, m2):
                raise ValueError(f"'{text}' is an empty range")
        return hours

    def ranges(self) -> list[tuple[dtime, dtime | None]]:
        """Hour ranges as (start, end) times; an end of 24:00 is None."""
        out = []
        for text in self.hours:
            m = _HOURS.match(text)
            assert m is not None
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            start = dtime(h1 % 24, m1)
            end = None if h2 == 24 else dtime(h2, m2)
            out.append((start, end))
        return out


class _Rule(_Strict):
    #: Unique per camera; defaults to the type plus the zone or line.
    name: str | None = None
    enabled: bool = True
    classes: list[Literal["person", "bicycle", "car", "motorcycle", "bus", "truck"]] | None = None
    #: A schedule's name (from the top-level ``schedules``) or one given inline.
    schedule: str | ScheduleConfig | None = None
    #: Seconds after an event ends before the same rule may fire again for the same subject.
    cooldown: Annotated[float, Field(ge=0, le=86400)] = 30.0
    severity: Severity | None = None
    #: Deliver this rule's events through the alert sinks (webhook, MQTT).
    notify: bool = True

    def display_name(self) -> str:
        if self.name:
            return self.name
        where = getattr(self, "zone", None) or getattr(self, "line", None)
        return f"{self.type}:{where}" if where else str(self.type)  # type: ignore[attr-defined]


class ZoneIntrusionRule(_Rule):
    """Someone (or a vehicle) of the given classes inside a zone."""

    type: Literal["zone_intrusion"]
    zone: str
    min_seconds: Annotated[float, Field(ge=0, le=3600)] = 1.0
    #: The situation ends after the zone has been empty this long.
    clear_seconds: Annotated[float, Field(ge=0, le=600)] = 3.0


class LineCrossingRule(_Rule):
    """Crossings of a line; every crossing is counted, ``direction`` picks which raise events."""

    type: Literal["line_crossing"]
    line: str
    direction: Literal["in", "out", "both"] = "both"


class DwellRule(_Rule):
    """Loitering: staying inside a zone longer than ``min_seconds`` (0 fires at once)."""

    type: Literal["dwell"]
    zone: str
    min_seconds: Annotated[float, Field(ge=0, le=86400)] = 30.0
    #: Leaving the zone for less than this does not reset the time spent in it.
    gap_seconds: Annotated[float, Field(ge=0, le=600)] = 2.0


class GrowthConfig(_Strict):
    people: Annotated[int, Field(ge=1, le=10000)]
    seconds: Annotated[float, Field(gt=0, le=3600)]


class CrowdRule(_Rule):
    """People in a zone (or the whole view) reach ``threshold`` and stay, or grow fast."""

    type: Literal["crowd"]
    zone: str | None = None
    threshold: Annotated[int, Field(ge=1, le=10000)] | None = None
    #: People per square metre (needs the zone's ``area_m2``).
    density: Annotated[float, Field(gt=0, le=20)] | None = None
    growth: GrowthConfig | None = None
    min_seconds: Annotated[float, Field(ge=0, le=3600)] = 2.0
    clear_seconds: Annotated[float, Field(ge=0, le=3600)] = 5.0

    @model_validator(mode="after")
    def _some_trigger(self) -> CrowdRule:
        if self.threshold is None and self.density is None and self.growth is None:
            raise ValueError("give a threshold, a density or a growth rate")
        return self


class FallRule(_Rule):
    """A person goes from upright to lying quickly and stays down, or lies still too long."""

    type: Literal["fall"]
    zone: str | None = None
    #: Longest time from upright to lying that counts as a fall.
    fall_seconds: Annotated[float, Field(gt=0, le=10)] = 2.5
    #: How long the person must stay down before the fall is reported.
    down_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
    #: A person lying (without a seen fall) this long is reported as down.
    lying_seconds: Annotated[float, Field(gt=0, le=3600)] = 20.0


class RunningRule(_Rule):
    """A person moving far faster than is normal for this camera."""

    type: Literal["running"]
    zone: str | None = None
    #: Multiple of the camera's normal walking speed.
    factor: Annotated[float, Field(gt=1, le=20)] = 2.5
    #: Never fire below this speed, in body heights per second (walking is about 0.8).
    min_speed: Annotated[float, Field(gt=0, le=20)] = 1.6
    min_seconds: Annotated[float, Field(ge=0, le=60)] = 0.8


class WrongWayRule(_Rule):
    """A vehicle moving against the allowed direction of a lane (zone) or line."""

    type: Literal["wrong_way"]
    zone: str | None = None
    line: str | None = None
    min_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
    #: How far against the direction it must travel, in box lengths.
    min_distance: Annotated[float, Field(gt=0, le=100)] = 1.0

    @model_validator(mode="after")
    def _one_place(self) -> WrongWayRule:
        if (self.zone is None) == (self.line is None):
            raise ValueError("give exactly one of zone (a lane with a direction) or line")
        return self


class ErraticDrivingRule(_Rule):
    """Swerving, abrupt stops in a lane, or speed far outside the lane's norm."""

    type: Literal["erratic_driving"]
    zone: str | None = None
    #: Lateral direction changes (each at least ``swerve_amplitude`` box widths) that make a swerve.
    swerves: Annotated[int, Field(ge=2, le=20)] = 3
    swerve_amplitude: Annotated[float, Field(gt=0, le=10)] = 0.25
    swerve_seconds: Annotated[float, Field(gt=0, le=60)] = 6.0
    #: Speed (box lengths per second) falling below 10% of what it was within this many seconds.
    stop_seconds: Annotated[float, Field(gt=0, le=10)] = 1.0
    #: Speed above this multiple of the lane's normal speed.
    speed_factor: Annotated[float, Field(gt=1, le=20)] = 2.5


class StoppedVehicleRule(_Rule):
    """A vehicle standing still inside a no-stopping zone."""

    type: Literal["stopped_vehicle"]
    zone: str
    min_seconds: Annotated[float, Field(ge=0, le=86400)] = 10.0
    #: Below this speed (box lengths per second) a vehicle counts as stopped.
    max_speed: Annotated[float, Field(gt=0, le=5)] = 0.1


class TamperingRule(_Rule):
    """The view blocked or covered, heavily defocused, the camera moved, or video lost."""

    type: Literal["tampering"]
    #: How long a problem must last before it is reported.
    min_seconds: Annotated[float, Field(ge=0, le=600)] = 2.0
    #: 0-1: higher reports smaller changes.
    sensitivity: Annotated[float, Field(ge=0, le=1)] = 0.5
    #: No frames for this long is "video lost" (live cameras).
    lost_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0


class UnusualActivityRule(_Rule):
    """Trajectories this camera's own history says are rare."""

    type: Literal["unusual_activity"]
    #: 0-1: higher flags more tracks as unusual.
    sensitivity: Annotated[float, Field(ge=0, le=1)] = 0.5
    #: Past tracks needed before the camera's normal is trusted.
    min_history: Annotated[int, Field(ge=10, le=100000)] = 50


RuleConfig = Annotated[
    ZoneIntrusionRule
    | LineCrossingRule
    | DwellRule
    | CrowdRule
    | FallRule
    | RunningRule
    | WrongWayRule
    | ErraticDrivingRule
    | StoppedVehicleRule
    | TamperingRule
    | UnusualActivityRule,
    Field(discriminator="type"),
]

#: Severity of each rule type's events unless the rule sets one.
DEFAULT_SEVERITY: dict[str, str] = {
    "zone_intrusion": "high",
    "line_crossing": "info",
    "dwell": "medium",
    "crowd": "medium",
    "fall": "critical",
    "running": "medium",
    "wrong_way": "high",
    "erratic_driving": "high",
    "stopped_vehicle": "medium",
    "tampering": "high",
    "unusual_activity": "low",
}

#: Classes a rule type applies to unless the rule lists them.
DEFAULT_CLASSES: dict[str, tuple[str, ...]] = {
    "zone_intrusion": PEOPLE,
    "line_crossing": PEOPLE,
    "dwell": PEOPLE,
    "crowd": PEOPLE,
    "fall": PEOPLE,
    "running": PEOPLE,
    "wrong_way": VEHICLES,
    "erratic_driving": VEHICLES,
    "stopped_vehicle": VEHICLES,
    "tampering": (),
    "unusual_activity": TRACKED_CLASSES,
}


def rule_classes(rule: _Rule) -> tuple[str, ...]:
    return tuple(rule.classes) if rule.classes else DEFAULT_CLASSES[rule.type]  # type: ignore[attr-defined]


def rule_severity(rule: _Rule) -> str:
    return rule.severity or DEFAULT_SEVERITY[rule.type]  # type: ignore[attr-defined]


class MovingObjectsConfig(_Strict):
    """Track moving blobs as objects of one class, for fixed cameras where the detector is blind.

    E.g. a road seen from straight above, where COCO detectors miss most
    cars: anything of a car's size that moves is then a car.
    """

    label: Literal["person", "bicycle", "car", "motorcycle", "bus", "truck"]
    #: Blob size limits as fractions of the frame's area.
    min_area: Annotated[float, Field(gt=0, lt=1)] = 0.004
    max_area: Annotated[float, Field(gt=0, le=1)] = 0.2

    @model_validator(mode="after")
    def _bounds(self) -> MovingObjectsConfig:
        if self.min_area >= self.max_area:
            raise ValueError("min_area must be smaller than max_area")
        return self


class RecordConfig(_Strict):
    """Recording of a live camera, stream-copied into segments (no re-encoding)."""

    #: ``continuous``: always; ``events``: around behaviour events only; ``off``: never.
    mode: Literal["off", "continuous", "events"] = "off"
    segment_seconds: Annotated[float, Field(ge=2, le=3600)] = 60.0
    #: Event-only mode: footage kept before an event starts and after it ends.
    pre_seconds: Annotated[float, Field(ge=0, le=300)] = 5.0
    post_seconds: Annotated[float, Field(ge=0, le=3600)] = 10.0
    #: Delete footage older than this many days (null: no age limit).
    retain_days: Annotated[float, Field(gt=0, le=3650)] | None = 7.0
    #: Keep at most this many GB of this camera's footage, oldest deleted first (null: no size limit).
    retain_gb: Annotated[float, Field(gt=0, le=100000)] | None = None
    #: Footage around a behaviour event (with the pre/post padding) is held this long, past the
    #: limits above, so an incident can still be reviewed and exported.
    event_hold_days: Annotated[float, Field(ge=0, le=3650)] = 30.0


_URL = re.compile(r"^(rtsps?|https?)://", re.I)


class CameraConfig(_Strict):
    """One camera: where its video comes from, recording, privacy masks, zones and rules."""

    #: Live source: ``rtsp://``, ``rtsps://``, ``http(s)://`` (MJPEG or HLS), or a local file or
    #: folder played as a camera. Credentials may be in the URL or below; they never appear in logs.
    url: str | None = None
    #: A lower-resolution stream of the same camera to analyse (the main stream is recorded).
    detect_url: str | None = None
    #: RTSP transport.
    transport: Literal["tcp", "udp"] = "tcp"
    username: str | None = None
    password: str | None = None
    #: Name of an environment variable holding the password.
    password_env: str | None = None
    #: Frames analysed per second.
    fps: Annotated[float, Field(gt=0, le=60)] = 5.0
    #: ``keyframes``: decode only keyframes (cheapest; for cameras with short GOPs).
    decode: Literal["all", "keyframes"] = "all"
    #: No frame for this long: the stream has stalled and is reconnected.
    stall_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    #: An unchanged picture for this long is reported as frozen.
    frozen_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    enabled: bool = True
    record: RecordConfig = RecordConfig()
    #: Privacy masks: blanked in everything users see or export, and excluded from analysis.
    masks: dict[str, ZoneConfig] = Field(default_factory=dict)
    #: Also track moving blobs as objects of a class (see MovingObjectsConfig).
    moving_objects: MovingObjectsConfig | None = None

    @field_validator("url", "detect_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        url = url.strip()
        if not url:
            raise ValueError("an empty URL; give rtsp://, http(s):// or a file or folder path")
        if "://" in url and not _URL.match(url):
            scheme = url.split("://", 1)[0]
            raise ValueError(f"unsupported URL scheme '{scheme}' (use rtsp, rtsps, http, https or a path)")
        if any(c.isspace() for c in url):
            raise ValueError("a URL cannot contain spaces")
        return url

    #: Frame width and height in pixels; when given, pixel coordinates are checked against it.
    size: tuple[Annotated[int, Field(ge=16, le=16384)], Annotated[int, Field(ge=16, le=16384)]] | None = None
    zones: dict[str, ZoneConfig] = Field(default_factory=dict)
    lines: dict[str, LineConfig] = Field(default_factory=dict)
    rules: list[RuleConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> CameraConfig:
        names: set[str] = set()
        for i, rule in enumerate(self.rules):
            zone = getattr(rule, "zone", None)
            line = getattr(rule, "line", None)
            if zone is not None and zone not in self.zones:
                known = ", ".join(sorted(self.zones)) or "none defined"
                raise ValueError(f"rules.{i}: unknown zone '{zone}' (zones: {known})")
            if line is not None and line not in self.lines:
                known = ", ".join(sorted(self.lines)) or "none defined"
                raise ValueError(f"rules.{i}: unknown line '{line}' (lines: {known})")
            if isinstance(rule, CrowdRule) and rule.density is not None:
                if zone is None or self.zones[zone].area_m2 is None:
                    raise ValueError(f"rules.{i}: a density needs a zone with area_m2")
            if isinstance(rule, WrongWayRule) and zone is not None and self.zones[zone].direction is None:
                raise ValueError(f"rules.{i}: zone '{zone}' has no direction, so it is not a lane")
            if isinstance(rule, WrongWayRule) and line is not None and self.lines[line].allowed == "both":
                raise ValueError(f"rules.{i}: line '{line}' allows both directions; set allowed: in or out")
            name = rule.display_name()
            if name in names:
                raise ValueError(f"rules.{i}: two rules are named '{name}'; give one a name")
            names.add(name)
        if self.size is not None:
            w, h = self.size
            for kind, shapes in (("zones", self.zones), ("lines", self.lines), ("masks", self.masks)):
                for shape_name, shape in shapes.items():
                    pts = list(shape.points)
                    if shape.normalised:
                        continue
                    bad = [p for p in pts if p[0] > w or p[1] > h]
                    if bad:
                        raise ValueError(
                            f"{kind}.{shape_name}: point {list(bad[0])} is outside the {w}x{h} frame"
                        )
        return self
