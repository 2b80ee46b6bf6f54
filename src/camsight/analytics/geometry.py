"""A camera's zones and lines in pixel coordinates, and the tests rules make on them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

from camsight.config import CameraConfig, LineConfig, ZoneConfig, direction_degrees
from camsight.errors import ConfigError


@dataclass(frozen=True)
class Zone:
    name: str
    points: np.ndarray  # (n, 2) pixels
    #: Allowed direction of travel as a unit vector (lanes only).
    direction: tuple[float, float] | None
    area_m2: float | None
    polygon: shapely.Polygon

    def contains(self, x: float, y: float) -> bool:
        """Whether the point is inside the zone or on its edge."""
        return bool(shapely.intersects_xy(self.polygon, x, y))


@dataclass(frozen=True)
class Line:
    """A segment a→b; ``normal`` is the unit vector of the "in" direction across it."""

    name: str
    a: tuple[float, float]
    b: tuple[float, float]
    normal: tuple[float, float]
    allowed: str

    def side(self, x: float, y: float) -> float:
        """Signed distance from the line's infinite extension: positive on the "in" side."""
        return (x - self.a[0]) * self.normal[0] + (y - self.a[1]) * self.normal[1]

    def crossing(self, p: tuple[float, float], q: tuple[float, float]) -> str | None:
        """``in``/``out`` if the move p→q crosses the segment, else None.

        A move that ends exactly on the line does not cross yet; the next
        one that leaves it does, so a track pausing on the line counts once.
        """
        sp, sq = self.side(*p), self.side(*q)
        if sp == 0 or sq == 0 or (sp > 0) == (sq > 0):
            return None
        # Where the move meets the line, as a fraction along the segment.
        k = sp / (sp - sq)
        x = p[0] + k * (q[0] - p[0])
        y = p[1] + k * (q[1] - p[1])
        ax, ay = self.a
        bx, by = self.b
        length2 = (bx - ax) ** 2 + (by - ay) ** 2
        u = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length2
        if u < 0 or u > 1:
            return None
        return "in" if sq > 0 else "out"


def shape_pixels(
    camera: str, kind: str, name: str, shape: ZoneConfig | LineConfig, size: tuple[int, int]
) -> np.ndarray:
    """A configured zone, line or mask as pixel points on a frame of ``size`` (width, height).

    A pixel point outside the frame is a :class:`~camsight.errors.ConfigError`
    naming ``cameras.<camera>.<kind>.<name>``.

    >>> from camsight.config import ZoneConfig
    >>> shape_pixels("hall", "masks", "desk", ZoneConfig(points=[[0, 0], [0.5, 0], [0.5, 1]]), (200, 100))
    array([[  0.,   0.],
           [100.,   0.],
           [100., 100.]])
    """
    pts = np.array(list(shape.points), np.float64)
    if shape.normalised:
        pts = pts * np.array(size, np.float64)
    _inside(camera, kind, name, pts, size)
    return pts


def _unit(deg: float) -> tuple[float, float]:
    r = math.radians(deg)
    return (math.cos(r), math.sin(r))


@dataclass(frozen=True)
class Geometry:
    """All zones and lines of one camera, for one frame size."""

    size: tuple[int, int]
    zones: dict[str, Zone]
    lines: dict[str, Line]

    @classmethod
    def build(cls, camera: str, config: CameraConfig, size: tuple[int, int]) -> Geometry:
        """Place the camera's shapes on a frame of ``size``; pixel shapes outside it are an error.

        >>> from camsight.config import CameraConfig
        >>> cam = CameraConfig(zones={"door": {"points": [[0, 0], [0.5, 0], [0.5, 1]]}})
        >>> Geometry.build("hall", cam, (200, 100)).zones["door"].points.tolist()
        [[0.0, 0.0], [100.0, 0.0], [100.0, 100.0]]
        """
        w, h = size
        zones: dict[str, Zone] = {}
        for name, z in config.zones.items():
            zones[name] = _zone(name, z, shape_pixels(camera, "zones", name, z, size))
        lines: dict[str, Line] = {}
        for name, ln in config.lines.items():
            lines[name] = _line(name, ln, shape_pixels(camera, "lines", name, ln, size))
        return cls((w, h), zones, lines)


def _inside(camera: str, kind: str, name: str, pts: np.ndarray, size: tuple[int, int]) -> None:
    w, h = size
    bad = pts[(pts[:, 0] > w + 0.5) | (pts[:, 1] > h + 0.5)]
    if len(bad):
        raise ConfigError(
            f"cameras.{camera}.{kind}.{name}: point {[round(float(c), 1) for c in bad[0]]} is outside "
            f"the camera's {w}x{h} frame"
        )


def _zone(name: str, z: ZoneConfig, pts: np.ndarray) -> Zone:
    direction = _unit(direction_degrees(z.direction)) if z.direction is not None else None
    polygon = shapely.Polygon(pts)
    shapely.prepare(polygon)
    return Zone(name, pts, direction, z.area_m2, polygon)


def _line(name: str, ln: LineConfig, pts: np.ndarray) -> Line:
    (ax, ay), (bx, by) = pts.tolist()
    length = math.hypot(bx - ax, by - ay)
    # The normal of a→b that points the way "in" goes.
    nx, ny = -(by - ay) / length, (bx - ax) / length
    ix, iy = _unit(direction_degrees(ln.in_))
    if nx * ix + ny * iy < 0:
        nx, ny = -nx, -ny
    return Line(name, (ax, ay), (bx, by), (nx, ny), ln.allowed)
