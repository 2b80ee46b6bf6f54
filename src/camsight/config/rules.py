"""Behaviour rules: each an observable situation with its severity, classes and schedule.

An object in a zone, a count over a threshold, a posture change; none scores
a person's intent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from camsight.config.base import StrictModel
from camsight.config.schedules import ScheduleConfig
from camsight.config.zones import PEOPLE, TRACKED_CLASSES, VEHICLES, Severity


class _Rule(StrictModel):
    name: str | None = None
    """Unique per camera; defaults to the type plus the zone or line."""
    enabled: bool = True
    classes: list[Literal["person", "bicycle", "car", "motorcycle", "bus", "truck"]] | None = None
    schedule: str | ScheduleConfig | None = None
    """A schedule's name (from the top-level ``schedules``) or one given inline."""
    cooldown: Annotated[float, Field(ge=0, le=86400)] = 30.0
    """Seconds after an event ends before the same rule may fire again for the same subject."""
    severity: Severity | None = None
    notify: bool = True
    """Deliver this rule's events through the alert sinks (webhook, MQTT)."""

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
    clear_seconds: Annotated[float, Field(ge=0, le=600)] = 3.0
    """The situation ends after the zone has been empty this long."""
    max_seconds: Annotated[float, Field(ge=1, le=86400)] = 600.0
    """Longest episode: a zone occupied longer ends its event here and a new one starts."""


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
    gap_seconds: Annotated[float, Field(ge=0, le=600)] = 2.0
    """Leaving the zone for less than this does not reset the time spent in it."""
    max_seconds: Annotated[float, Field(ge=1, le=86400)] = 600.0
    """Longest event: someone staying longer has this one ended here and a new one started."""


class GrowthConfig(StrictModel):
    people: Annotated[int, Field(ge=1, le=10000)]
    seconds: Annotated[float, Field(gt=0, le=3600)]


class CrowdRule(_Rule):
    """People in a zone (or the whole view) reach ``threshold`` and stay, or grow fast."""

    type: Literal["crowd"]
    zone: str | None = None
    threshold: Annotated[int, Field(ge=1, le=10000)] | None = None
    density: Annotated[float, Field(gt=0, le=20)] | None = None
    """People per square metre (needs the zone's ``area_m2``)."""
    growth: GrowthConfig | None = None
    min_seconds: Annotated[float, Field(ge=0, le=3600)] = 2.0
    clear_seconds: Annotated[float, Field(ge=0, le=3600)] = 5.0
    max_seconds: Annotated[float, Field(ge=1, le=86400)] = 600.0
    """Longest episode: a crowd lasting longer has its event ended here and a new one started."""

    @model_validator(mode="after")
    def _some_trigger(self) -> CrowdRule:
        if self.threshold is None and self.density is None and self.growth is None:
            raise ValueError("give a threshold, a density or a growth rate")
        return self


class FallRule(_Rule):
    """A person goes from upright to lying quickly and stays down, or lies still too long."""

    type: Literal["fall"]
    zone: str | None = None
    fall_seconds: Annotated[float, Field(gt=0, le=10)] = 2.5
    """Longest time from upright to lying that counts as a fall."""
    down_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
    """How long the person must stay down before the fall is reported."""
    lying_seconds: Annotated[float, Field(gt=0, le=3600)] = 20.0
    """A person lying (without a seen fall) this long is reported as down (if seen standing before)."""


class RunningRule(_Rule):
    """A person moving far faster than is normal for this camera."""

    type: Literal["running"]
    zone: str | None = None
    factor: Annotated[float, Field(gt=1, le=20)] = 2.5
    """Multiple of the camera's normal walking speed."""
    min_speed: Annotated[float, Field(gt=0, le=20)] = 1.6
    """Never fire below this speed, in body heights per second (walking is about 0.8)."""
    min_seconds: Annotated[float, Field(ge=0, le=60)] = 0.8


class WrongWayRule(_Rule):
    """A vehicle moving against the allowed direction of a lane (zone) or line."""

    type: Literal["wrong_way"]
    zone: str | None = None
    line: str | None = None
    min_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
    min_distance: Annotated[float, Field(gt=0, le=100)] = 1.0
    """How far against the direction it must travel, in box lengths."""

    @model_validator(mode="after")
    def _one_place(self) -> WrongWayRule:
        if (self.zone is None) == (self.line is None):
            raise ValueError("give exactly one of zone (a lane with a direction) or line")
        return self


class ErraticDrivingRule(_Rule):
    """Swerving, abrupt stops in a lane, or speed far outside the lane's norm."""

    type: Literal["erratic_driving"]
    zone: str | None = None
    swerves: Annotated[int, Field(ge=2, le=20)] = 3
    """Lateral direction changes (each at least ``swerve_amplitude`` box widths) that make a swerve."""
    swerve_amplitude: Annotated[float, Field(gt=0, le=10)] = 0.25
    swerve_seconds: Annotated[float, Field(gt=0, le=60)] = 6.0
    stop_seconds: Annotated[float, Field(gt=0, le=10)] = 1.0
    """Speed (box lengths per second) falling below 10% of what it was within this many seconds."""
    speed_factor: Annotated[float, Field(gt=1, le=20)] = 2.5
    """Speed above this multiple of the lane's normal speed."""


class StoppedVehicleRule(_Rule):
    """A vehicle standing still inside a no-stopping zone."""

    type: Literal["stopped_vehicle"]
    zone: str
    min_seconds: Annotated[float, Field(ge=0, le=86400)] = 10.0
    max_speed: Annotated[float, Field(gt=0, le=5)] = 0.1
    """Below this speed (box lengths per second) a vehicle counts as stopped."""


class TamperingRule(_Rule):
    """The view blocked or covered, heavily defocused, the camera moved, or video lost."""

    type: Literal["tampering"]
    min_seconds: Annotated[float, Field(ge=0, le=600)] = 2.0
    """How long a problem must last before it is reported."""
    sensitivity: Annotated[float, Field(ge=0, le=1)] = 0.5
    """0-1: higher reports smaller changes."""
    lost_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    """No frames for this long is "video lost" (live cameras)."""


class UnusualActivityRule(_Rule):
    """Trajectories this camera's own history says are rare."""

    type: Literal["unusual_activity"]
    sensitivity: Annotated[float, Field(ge=0, le=1)] = 0.5
    """0-1: higher flags more tracks as unusual."""
    min_history: Annotated[int, Field(ge=10, le=100000)] = 50
    """Past tracks needed before the camera's normal is trusted."""


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
