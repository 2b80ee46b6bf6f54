"""Speed and direction of a track from its boxes."""

from __future__ import annotations

import math

import numpy as np

from camsight.records.tracks import Kinematics, Observation

_HEADINGS = ("right", "down", "left", "up")


def anchor_points(observations: list[Observation], label: str) -> np.ndarray:
    """The point that moves with the object: feet for people, centre otherwise.

    Feet stay on the ground plane, so they move less when a person bends or
    is cut off at the top than the centre of the box does.
    """
    boxes = np.array([o.box for o in observations], np.float64)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    y = boxes[:, 3] if label == "person" else (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx, y], axis=1)


def kinematics(observations: list[Observation], label: str, window: float = 0.5) -> Kinematics:
    """Speed and heading, smoothing over ``window`` seconds to ignore box jitter.

    >>> obs = [Observation(i + 1, i * 0.2, (10.0 * i, 0, 10.0 * i + 20, 40), 0.9) for i in range(11)]
    >>> k = kinematics(obs, "person")
    >>> round(k.speed_px_s), k.heading
    (50, 'right')
    """
    ts = np.array([o.t for o in observations], np.float64)
    pts = anchor_points(observations, label)
    heights = np.array([o.box[3] - o.box[1] for o in observations], np.float64)
    mean_h = max(float(np.median(heights)), 1.0)
    duration = float(ts[-1] - ts[0])
    if len(observations) < 2 or duration <= 0:
        return Kinematics(0.0, 0.0, 0.0, None, "stationary", 0.0, 0.0)
    smooth = _smooth(ts, pts, window)
    steps = np.linalg.norm(np.diff(smooth, axis=0), axis=1)
    path = float(steps.sum())
    dt = np.diff(ts)
    inst = np.divide(steps, dt, out=np.zeros_like(steps), where=dt > 0)
    disp = smooth[-1] - smooth[0]
    displacement = float(np.hypot(*disp))
    # Smoothing pulls the ends of the path inwards; measure speed where a
    # full window was available, or on the raw points for short tracks.
    inner = (ts >= ts[0] + window / 2) & (ts <= ts[-1] - window / 2)
    if inner.sum() >= 2:
        idx = np.flatnonzero(inner)
        speed = float(steps[idx[0] : idx[-1]].sum()) / float(ts[idx[-1]] - ts[idx[0]])
    else:
        speed = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()) / duration
    # Under a fifth of a body height of net movement is standing still.
    if displacement < 0.2 * mean_h:
        direction, heading = None, "stationary"
    else:
        direction = math.degrees(math.atan2(disp[1], disp[0])) % 360
        heading = _HEADINGS[int(((direction + 45) % 360) // 90)]
    return Kinematics(
        speed_px_s=speed,
        speed_bh_s=speed / mean_h,
        max_speed_px_s=float(inst.max()) if len(inst) else 0.0,
        direction_deg=direction,
        heading=heading,
        displacement_px=displacement,
        path_px=path,
    )


def _smooth(ts: np.ndarray, pts: np.ndarray, window: float) -> np.ndarray:
    """Mean of the points within ``window``/2 seconds of each point."""
    out = np.empty_like(pts)
    lo = hi = 0
    n = len(ts)
    half = window / 2
    csum = np.vstack([np.zeros((1, 2)), np.cumsum(pts, axis=0)])
    for i in range(n):
        while ts[lo] < ts[i] - half:
            lo += 1
        while hi < n and ts[hi] <= ts[i] + half:
            hi += 1
        out[i] = (csum[hi] - csum[lo]) / (hi - lo)
    return out


#: Seconds of detections over which a "person" that never moved is judged.
STILL_SECONDS = 10.0
#: How far (share of its height, 5th to 95th percentile) the box may wander and still be still:
#: a detector's jitter on a fixed object is a pixel or two; a person standing or sitting shifts
#: their weight, turns, gestures.
STILL_SPREAD = 0.1
#: Boxes narrower than this (height / width) are not an upright figure: a person lying still
#: after a fall, or sitting, is never taken for part of the scene.
UPRIGHT = 1.5


def still_scenery(observations: list[Observation], label: str, confident: float) -> bool:
    """Whether a "person" track is a fixed part of the scene (a sign, a post, a statue) the
    detector takes for a person now and then: an upright box that stayed put to the pixel for
    :data:`STILL_SECONDS` or more, with a median confidence under ``confident`` (the confidence
    that starts a person track), so only its best moments ever looked like a person.

    People who stand still are kept: their boxes wander more, and they are detected with
    confidence; so are people lying or sitting (wide boxes) and every other class.

    >>> sign = [Observation(i, i * 0.2, (30.0 + i % 2, 110, 48, 143), 0.55) for i in range(60)]
    >>> still_scenery(sign, "person", 0.6), still_scenery(sign, "person", 0.5)
    (True, False)
    >>> walker = [Observation(i, i * 0.2, (30.0 + i, 110, 48 + i, 143), 0.55) for i in range(60)]
    >>> still_scenery(walker, "person", 0.6)
    False
    """
    seen = [o for o in observations if o.detected]
    if label != "person" or len(seen) < 3 or seen[-1].t - seen[0].t < STILL_SECONDS:
        return False
    if float(np.median([o.confidence for o in seen])) >= confident:
        return False
    boxes = np.array([o.box for o in seen], np.float64)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    height = float(np.median(h))
    if height <= 0 or height < UPRIGHT * float(np.median(w)):
        return False
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    low, high = np.percentile(np.column_stack([centre, h]), [5, 95], axis=0)
    return bool((high - low <= STILL_SPREAD * height).all())
