"""Zones and lines drawn on a camera's picture, and the class groups rules speak of.

Coordinates are normalised (0-1) when every value is within 0..1 and
``units`` is not ``pixels``; otherwise they are pixels of the camera's frame.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from camsight.config.base import StrictModel

Point = tuple[float, float]
Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
Units = Literal["auto", "normalised", "pixels"]
#: Directions in the picture, as users say them; degrees use image axes (0 = right, 90 = down).
COMPASS: dict[str, float] = {"right": 0.0, "down": 90.0, "left": 180.0, "up": 270.0}
PEOPLE = ("person",)
VEHICLES = ("car", "motorcycle", "bus", "truck")
TRACKED_CLASSES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
#: Largest pixel coordinate (and frame side, see ``CameraConfig.size``): no camera's picture is wider.
#: Without it a point such as 1e308 passes on a camera whose size is not known yet and breaks the
#: geometry (and the web editor) later.
MAX_PIXELS = 16384


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
    bad = [p for p in points if any(c > MAX_PIXELS for c in p)]
    if bad:
        raise ValueError(
            f"point {list(bad[0])} is outside any frame (pixel coordinates are at most {MAX_PIXELS})"
        )


class ZoneConfig(StrictModel):
    """A polygon; with ``direction`` it is a lane with an allowed direction of travel."""

    points: Annotated[list[Point], Field(min_length=3, max_length=256)]
    units: Units = "auto"
    direction: Direction | None = None
    area_m2: Annotated[float, Field(gt=0)] | None = None
    """Floor area in square metres, for crowd density (people per m²)."""

    @field_validator("points")
    @classmethod
    def _finite(cls, points: list[Point]) -> list[Point]:
        if not all(math.isfinite(c) for p in points for c in p):
            raise ValueError("coordinates must be finite numbers")
        return points

    @model_validator(mode="after")
    def _simple_polygon(self) -> ZoneConfig:
        # Imported here: shapely (and numpy under it) would cost every CLI start
        # half a second, and only a config with zones needs it.
        import shapely

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


class LineConfig(StrictModel):
    """A line from its first point to its second.

    ``in`` names the direction of travel (in the picture) that counts as
    coming in; crossings the other way count as going out. ``allowed`` is the
    direction traffic may cross in, for wrong-way rules.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True
    )

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
