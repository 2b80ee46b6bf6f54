"""A camera's block: where its video comes from, recording, masks, zones, lines and rules.

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

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from camsight.config.base import StrictModel
from camsight.config.rules import CrowdRule, RuleConfig, WrongWayRule
from camsight.config.zones import LineConfig, ZoneConfig


class MovingObjectsConfig(StrictModel):
    """Track moving blobs as objects of one class, for fixed cameras where the detector is blind.

    E.g. a road seen from straight above, where COCO detectors miss most
    cars: anything of a car's size that moves is then a car.
    """

    label: Literal["person", "bicycle", "car", "motorcycle", "bus", "truck"]
    min_area: Annotated[float, Field(gt=0, lt=1)] = 0.004
    """Blob size limits as fractions of the frame's area."""
    max_area: Annotated[float, Field(gt=0, le=1)] = 0.2

    @model_validator(mode="after")
    def _bounds(self) -> MovingObjectsConfig:
        if self.min_area >= self.max_area:
            raise ValueError("min_area must be smaller than max_area")
        return self


class RecordConfig(StrictModel):
    """Recording of a live camera, stream-copied into segments (no re-encoding)."""

    mode: Literal["off", "continuous", "events"] = "off"
    """``continuous``: always; ``events``: around behaviour events only; ``off``: never."""
    segment_seconds: Annotated[float, Field(ge=2, le=3600)] = 60.0
    pre_seconds: Annotated[float, Field(ge=0, le=300)] = 5.0
    """Event-only mode: footage kept before an event starts and after it ends."""
    post_seconds: Annotated[float, Field(ge=0, le=3600)] = 10.0
    retain_days: Annotated[float, Field(gt=0, le=3650)] | None = 7.0
    """Delete footage older than this many days (null: no age limit)."""
    retain_gb: Annotated[float, Field(gt=0, le=100000)] | None = None
    """Keep at most this many GB of this camera's footage, oldest deleted first (null: no size limit)."""
    event_hold_days: Annotated[float, Field(ge=0, le=3650)] = 30.0
    """Footage around a behaviour event (with the pre/post padding) is held this long, past the limits
    above, so an incident can still be reviewed and exported."""


_URL = re.compile(r"^(rtsps?|https?)://", re.I)


class CameraConfig(StrictModel):
    """One camera: where its video comes from, recording, privacy masks, zones and rules."""

    url: str | None = None
    """Live source: ``rtsp://``, ``rtsps://``, ``http(s)://`` (MJPEG or HLS), or a local file or folder
    played as a camera. Credentials may be in the URL or below; they never appear in logs."""
    detect_url: str | None = None
    """A lower-resolution stream of the same camera to analyse (the main stream is recorded)."""
    transport: Literal["tcp", "udp"] = "tcp"
    """RTSP transport."""
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    """Name of an environment variable holding the password."""
    fps: Annotated[float, Field(gt=0, le=60)] = 5.0
    """Frames analysed per second."""
    decode: Literal["all", "keyframes"] = "all"
    """``keyframes``: decode only keyframes (cheapest; for cameras with short GOPs)."""
    stall_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    """No frame for this long: the stream has stalled and is reconnected."""
    frozen_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """An unchanged picture for this long is reported as frozen."""
    enabled: bool = True
    record: RecordConfig = RecordConfig()
    masks: dict[str, ZoneConfig] = Field(default_factory=dict)
    """Privacy masks: blanked in everything users see or export, and excluded from analysis."""
    moving_objects: MovingObjectsConfig | None = None
    """Also track moving blobs as objects of a class (see MovingObjectsConfig)."""

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

    size: tuple[Annotated[int, Field(ge=16, le=16384)], Annotated[int, Field(ge=16, le=16384)]] | None = None
    """Frame width and height in pixels; when given, pixel coordinates are checked against it."""
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
