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

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from camsight.config.base import StrictModel
from camsight.config.nodes import NodeName
from camsight.config.rules import CrowdRule, RuleConfig, WrongWayRule
from camsight.config.secrets import SecretEnv
from camsight.config.zones import MAX_PIXELS, LineConfig, ZoneConfig
from camsight.urls import is_network, link_local


class MovingObjectsConfig(StrictModel):
    """Track moving blobs as objects of one class, for fixed cameras where the detector is blind.

    E.g. a road seen from straight above, where COCO detectors miss most
    cars: anything of a car's size that moves is then a car.
    """

    label: Literal["person", "bicycle", "car", "motorcycle", "bus", "truck"]
    min_area: Annotated[float, Field(gt=0, lt=1)] = 0.004
    """Blob size limits as fractions of the frame's area."""
    max_area: Annotated[float, Field(gt=0, le=1)] = 0.2
    top_down: bool = True
    """The camera looks straight down (what moving objects are for): rules place each object
    at its box centre, since from above there are no feet at the bottom of the box. Set false
    for a camera that looks across the scene."""

    @model_validator(mode="after")
    def _bounds(self) -> MovingObjectsConfig:
        if self.min_area >= self.max_area:
            raise ValueError("min_area must be smaller than max_area")
        return self


class RecordConfig(StrictModel):
    """Recording of a live camera, stream-copied into segments (re-encoded only for codecs MP4 refuses)."""

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
    reencode: bool = True
    """Codecs MP4 cannot hold (MS-MPEG4, WMV...) are re-encoded to H.264 so every segment is a
    fragmented MP4 (4-5 ms of CPU a frame at 768x576); false: copied as they come into Matroska."""


_URL = re.compile(r"^(rtsps?|https?)://", re.I)


def _pseudo_protocol(path: str) -> str | None:
    """The FFmpeg protocol a local ``path`` would be read with (``concat``, ``subfile``...), if any.

    FFmpeg reads ``name:rest`` as protocol ``name`` (``concat:/etc/passwd|/etc/hosts``,
    ``subfile,,0,0,:/etc/passwd``, ``pipe:0``); a path whose first part holds a ``:`` is refused
    (``./name:x`` too: it is normalised to ``name:x`` before it is opened).

    >>> _pseudo_protocol("concat:/etc/passwd|/etc/hosts"), _pseudo_protocol("/srv/cams/gate:1.mp4")
    ('concat', None)
    """
    parts = PurePosixPath(path).parts
    first = parts[0] if parts else ""
    if ":" not in first:
        return None
    return re.split(r"[:,]", first, maxsplit=1)[0] or first


def api_source_problem(url: str, camera_folders: Sequence[Path]) -> str | None:
    """Why ``url`` may not be a camera's source when an API client sets it; None when it may.

    The config file and ``camsight run --camera`` come from the machine's owner
    and may name any file. A client of the API (an admin of the web app) may
    set network streams, except to link-local hosts (169.254.0.0/16, fe80::/10:
    a cloud's metadata service), and local files or folders only inside
    ``storage.camera_folders`` (symbolic links and ``..`` resolved first), never
    devices, pipes or ``/proc`` files.
    """
    url = url.strip()
    if is_network(url):
        if link_local(url):
            return "a link-local address (169.254.x.x, fe80::) cannot be a camera; give the camera's address"
        return None
    folders = [Path(os.path.realpath(Path(f).expanduser())) for f in camera_folders]
    if not folders:
        return (
            "a local file or folder can be set through the API only inside storage.camera_folders, and "
            "none is configured; give an rtsp://, rtsps:// or http(s):// stream"
        )
    target = Path(os.path.realpath(url))
    if not any(target.is_relative_to(folder) for folder in folders):
        listed = ", ".join(str(f) for f in folders)
        return f"a local file or folder must be inside storage.camera_folders ({listed})"
    try:
        mode = target.stat().st_mode
    except OSError:
        return None  # not there yet: a folder camera may be created later, and nothing is read now
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "not a regular file or folder (a device, pipe or socket cannot be a camera)"
    return None


class CameraConfig(StrictModel):
    """One camera: where its video comes from, recording, privacy masks, zones and rules."""

    url: str | None = None
    """Live source: ``rtsp://``, ``rtsps://``, ``http(s)://`` (MJPEG or HLS), or a local file or folder
    played as a camera (set over the API: only inside ``storage.camera_folders``). Credentials may be
    in the URL or below; they never appear in logs."""
    detect_url: str | None = None
    """A lower-resolution stream of the same camera to analyse (the main stream is recorded)."""
    transport: Literal["tcp", "udp"] = "tcp"
    """RTSP transport."""
    username: str | None = None
    password: str | None = None
    password_env: SecretEnv | None = None
    """Name of an environment variable holding the password; it must start with ``CAMSIGHT_SECRET_``
    (the config can be edited over the API, so it may not name the server's other variables)."""
    fps: Annotated[float, Field(gt=0, le=60)] = 5.0
    """Frames analysed per second."""
    decode: Literal["all", "keyframes"] = "all"
    """``keyframes``: decode only keyframes (cheapest; for cameras with short GOPs)."""
    stall_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    """No frame for this long: the stream has stalled and is reconnected."""
    frozen_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """An unchanged picture for this long is reported as frozen."""
    enabled: bool = True
    node: NodeName | None = None
    """The node (``camsight run --node NAME``) that analyses and records this camera; its footage
    stays there and other nodes fetch it. Unset: run by ``nodes.default`` when that is set, else by
    a process started without ``--node`` (one box) and by no node (see docs/scaling.md)."""
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
        if not url.isprintable():
            raise ValueError("a URL cannot contain control characters")
        protocol = None if "://" in url else _pseudo_protocol(url)
        if protocol is not None:
            raise ValueError(
                f"'{protocol}:' is not a camera source (give rtsp://, rtsps://, http(s):// or a file or "
                "folder path; write a path holding ':' as /full/path)"
            )
        return url

    size: (
        tuple[Annotated[int, Field(ge=16, le=MAX_PIXELS)], Annotated[int, Field(ge=16, le=MAX_PIXELS)]] | None
    ) = None
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
