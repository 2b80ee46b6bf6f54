"""The picture stored with an event: the frame with the rule's zone or line and the boxes drawn."""

from __future__ import annotations

import cv2
import numpy as np

from camsight.analytics.geometry import Geometry
from camsight.analytics.rules.base import Box, Event, ObjectState

INVOLVED = (40, 40, 230)  # red (BGR)
OTHER = (170, 170, 170)
ZONE = (0, 200, 255)
LINE = (255, 160, 0)


def _text(
    image: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int], scale: float
) -> None:
    # A dark outline keeps the text readable on any background.
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def draw_snapshot(
    image: np.ndarray, geometry: Geometry, event: Event, objects: list[ObjectState], extra: list[Box] = ()
) -> np.ndarray:
    """A copy of ``image`` with the event's zone/line, its tracks' boxes (red) and others (grey).

    >>> from camsight.config import CameraConfig
    >>> geo = Geometry.build("c", CameraConfig(), (64, 48))
    >>> ev = Event("u", "c", "crowd", "crowd", "medium", 0.0, None, "test", track_ids=[1])
    >>> draw_snapshot(np.zeros((48, 64, 3), np.uint8), geo, ev, []).shape
    (48, 64, 3)
    """
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    if event.zone and event.zone in geometry.zones:
        pts = geometry.zones[event.zone].points.round().astype(np.int32)
        overlay = out.copy()
        cv2.fillPoly(overlay, [pts], ZONE)
        cv2.addWeighted(overlay, 0.2, out, 0.8, 0, dst=out)
        cv2.polylines(out, [pts], True, ZONE, 2, cv2.LINE_AA)
        _text(out, event.zone, tuple(pts[0]), ZONE, scale)
    if event.line and event.line in geometry.lines:
        line = geometry.lines[event.line]
        a = tuple(round(c) for c in line.a)
        b = tuple(round(c) for c in line.b)
        cv2.line(out, a, b, LINE, 2, cv2.LINE_AA)
        mid = ((a[0] + b[0]) // 2, (a[1] + b[1]) // 2)
        tip = (int(mid[0] + 30 * line.normal[0]), int(mid[1] + 30 * line.normal[1]))
        cv2.arrowedLine(out, mid, tip, LINE, 2, cv2.LINE_AA, tipLength=0.35)
        _text(out, f"{event.line} (in)", tip, LINE, scale)
    involved = set(event.track_ids)
    for o in sorted(objects, key=lambda o: o.track_id in involved):
        x1, y1, x2, y2 = (round(c) for c in o.box)
        colour = INVOLVED if o.track_id in involved else OTHER
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2 if o.track_id in involved else 1)
        if o.track_id in involved:
            _text(out, f"{o.label} #{o.track_id}", (x1, max(12, y1 - 4)), colour, scale)
    for box in extra:
        x1, y1, x2, y2 = (round(c) for c in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), INVOLVED, 2)
    banner = f"{event.severity.upper()}  {event.summary}"
    cv2.rectangle(out, (0, 0), (w, int(28 * scale / 0.5)), (0, 0, 0), -1)
    _text(out, banner[:120], (6, int(20 * scale / 0.5)), (255, 255, 255), scale)
    return out
