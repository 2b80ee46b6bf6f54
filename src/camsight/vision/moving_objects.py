"""Moving blobs as objects, for fixed cameras the COCO detectors do not serve well.

Seen from straight above, a car looks nothing like the cars in COCO and the
detectors barely find it. On such a camera the user can declare that
anything of a given size that moves is an object of a given class ("on this
road everything big that moves is a car"). :class:`MovingObjects` finds
those blobs with a background model (OpenCV's MOG2) on a small copy of each
frame, and :func:`merge` adds them to the detector's boxes where the
detector saw nothing.

The pieces, cheapest first, all on a frame about 192 pixels wide:

* exposure compensation: cameras change their exposure when something
  bright or dark fills part of the view (a white car makes the road go
  from grey 114 to 66). The median difference between the frame and the
  background model is the shift of the whole picture; it is taken off
  before the model sees the frame, so the road stays background;
* MOG2 without shadow detection, then a morphological opening (drops
  speckle) and closing (joins an object's parts), then connected
  components kept when their area is within ``[min_area, max_area]``;
* a global change the compensation cannot absorb (lights switched on, the
  camera moved) makes most pixels foreground: such a frame reports nothing
  and the model re-learns from it;
* ghosts: where an object stood when the model started (or stood long
  enough to be learnt) and then left, the revealed background is
  foreground until the model forgets the object. A ghost does not move, so
  a blob is kept only when enough of it differs from the frame analysed
  just before. A moving object always does; the price is that an object
  that stops is no longer reported (it is not *moving* any more). While
  the object drives off, for a second or so, its box may still take in
  part of the place it left.

Objects that touch make one blob: two cars passing side by side are one
patch of moving pixels, bigger than either. :func:`merge` splits such a blob
between the objects known to be in it (the detector's boxes and the boxes
where the tracker expects its tracks), cut where it is narrowest between
them, so each car keeps a box of its own; a blob with one object or none in
it stays one box, or none when it is bigger than ``max_area``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from camsight.vision.detections import CLASSES, PERSON, VEHICLES, Detections

#: Detector classes trusted over a moving blob's declared class.
TRAFFIC = frozenset((PERSON, *VEHICLES))


@dataclass(frozen=True)
class Blobs(Detections):
    """The moving blobs of one frame: their boxes, and the pixels behind them.

    ``components`` is the reduced frame's map of connected components (0:
    background), ``ids`` the component of each box, ``oversize`` the moving
    components bigger than ``max_area`` (several objects together, reported
    only when :func:`merge` can split them), ``factor`` the reduction and
    ``area`` the (min, max) blob area in reduced pixels.
    """

    components: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    ids: tuple[int, ...] = ()
    oversize: tuple[int, ...] = ()
    factor: int = 1
    area: tuple[float, float] = (0.0, 0.0)
    #: The class and confidence of every blob box, pieces of split blobs included.
    label: str = "car"
    score: float = 0.5


@dataclass(frozen=True)
class MovingObjectSettings:
    """What a moving blob is reported as, and how blobs are found.

    ``label`` is the class given to every blob (one of :data:`CLASSES`);
    ``min_area`` and ``max_area`` bound a blob's area as fractions of the
    frame's; ``confidence`` is the score given to blob boxes.

    The rest is tuning: ``width`` is the width (pixels) the frame is reduced
    to (by a whole factor); ``history`` (frames) and ``var_threshold`` are
    MOG2's; ``learning_rate`` is MOG2's rate once warmed up (during the
    warm-up MOG2's own, ``1/min(2 * frames seen, history)``, learns fast; a
    negative value keeps that). At 0.005 and 5 fps, something that stays put
    for about 4 s becomes background. ``warmup`` (seconds) is how long
    nothing is reported after the first frame or a re-learn; ``max_foreground`` is the
    share of foreground pixels beyond which a frame counts as a global
    change; ``motion_threshold`` is the grey-level change from the previous
    frame that marks a pixel as moving, and ``min_motion`` is about how far
    (pixels of the reduced frame) a blob must have moved since the previous
    frame not to be taken for a ghost: it needs that many times the square
    root of its area in moving pixels (an object moving ``d`` pixels changes
    about ``d`` times its width).

    >>> MovingObjectSettings("car").max_area
    0.2
    >>> MovingObjectSettings("spaceship")
    Traceback (most recent call last):
    ...
    ValueError: unknown class 'spaceship' for moving objects
    """

    label: str
    min_area: float = 0.004
    max_area: float = 0.2
    confidence: float = 0.5
    width: int = 192
    history: int = 200
    var_threshold: float = 25.0
    learning_rate: float = 0.005
    warmup: float = 1.0
    max_foreground: float = 0.5
    motion_threshold: int = 12
    min_motion: float = 1.0

    def __post_init__(self) -> None:
        if self.label not in CLASSES:
            raise ValueError(f"unknown class {self.label!r} for moving objects")
        if not 0 <= self.min_area < self.max_area <= 1:
            raise ValueError(f"need 0 <= min_area < max_area <= 1, got {self.min_area}, {self.max_area}")
        if self.width < 8:
            raise ValueError(f"width must be at least 8 pixels, got {self.width}")


_OPEN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_CLOSE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


class MovingObjects:
    """Boxes of the blobs that move in front of a fixed camera.

    Give it every analysed frame, in order: the background model learns from
    each one.

    >>> rng = np.random.default_rng(0)
    >>> road = rng.integers(90, 130, (216, 384), dtype=np.uint8)
    >>> finder = MovingObjects(MovingObjectSettings("car"))
    >>> for i in range(12):
    ...     frame = road.copy()
    ...     frame[80:130, 20 + 20 * i : 80 + 20 * i] = 230  # a white car driving right
    ...     found = finder.update(frame, i / 5)
    >>> found.labels, found.xyxy.round().tolist()
    (('car',), [[240.0, 80.0, 300.0, 130.0]])
    """

    def __init__(self, settings: MovingObjectSettings) -> None:
        self.settings = settings
        self._model: cv2.BackgroundSubtractorMOG2 | None = None
        self._shape: tuple[int, int] | None = None
        self._factor = 1
        self._start = 0.0
        self._previous: np.ndarray | None = None
        #: Share of the last frame's pixels that were foreground (diagnostics).
        self.last_foreground = 0.0
        #: Brightness shift taken off the last frame (diagnostics).
        self.last_shift = 0.0

    def reset(self) -> None:
        """Forget the background; the next frame starts a new warm-up."""
        self._model = None
        self._previous = None

    def _new_model(self, t: float) -> cv2.BackgroundSubtractorMOG2:
        s = self.settings
        model = cv2.createBackgroundSubtractorMOG2(s.history, s.var_threshold, False)
        self._start = t
        return model

    def update(self, gray: np.ndarray, t: float) -> Detections:
        """Learn from ``gray`` (uint8 luma, seen at ``t`` seconds) and return its moving blobs.

        Boxes are pixel xyxy in ``gray``'s resolution. Nothing is returned for
        the first ``warmup`` seconds, nor for a frame that changed as a
        whole. A new picture size starts a new background.
        """
        s = self.settings
        h, w = gray.shape[:2]
        if self._shape != (h, w):
            self._shape = (h, w)
            # A whole-number reduction keeps OpenCV's area resize on its fast path.
            self._factor = max(1, w // s.width)
            self.reset()
        f = self._factor
        small = cv2.resize(gray, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        model, previous = self._model, self._previous
        if model is None or previous is None:
            self._model = self._new_model(t)
            self._model.apply(small, learningRate=1.0)
            self._previous = small
            self.last_foreground = self.last_shift = 0.0
            return Detections.empty()

        small = self._compensate(small, model.getBackgroundImage())
        warm = t - self._start >= s.warmup
        rate = s.learning_rate if warm else -1.0
        mask = model.apply(small, learningRate=rate)
        self._previous = small
        self.last_foreground = float(np.count_nonzero(mask)) / mask.size
        if self.last_foreground > s.max_foreground:
            # Not objects but the whole picture changing: start again from this frame.
            self._model = self._new_model(t)
            self._model.apply(small, learningRate=1.0)
            return Detections.empty()
        if not warm:
            return Detections.empty()
        return self._blobs(mask, small, previous)

    def _compensate(self, small: np.ndarray, background: np.ndarray) -> np.ndarray:
        """Take the picture-wide brightness shift (auto exposure) off ``small``."""
        diff = cv2.subtract(small[::2, ::2], background[::2, ::2], dtype=cv2.CV_16S)
        shift = float(np.median(diff))
        self.last_shift = shift
        if abs(shift) < 1.0:
            return small
        return cv2.subtract(small, shift, dtype=cv2.CV_8U) if shift > 0 else cv2.add(small, -shift)

    def _blobs(self, mask: np.ndarray, small: np.ndarray, previous: np.ndarray) -> Detections:
        s = self.settings
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _OPEN)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _CLOSE)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            return Detections.empty()
        area = stats[:, cv2.CC_STAT_AREA]
        share = area / float(mask.size)
        keep = np.flatnonzero(share >= s.min_area)
        keep = keep[keep > 0]  # component 0 is the background
        if keep.size == 0:
            return Detections.empty()
        # Ghosts do not move: keep blobs of which enough changed since the last frame.
        moving = cv2.absdiff(small, previous) > s.motion_threshold
        counts = np.bincount(labels[moving], minlength=n)
        keep = keep[counts[keep] >= s.min_motion * np.sqrt(area[keep])]
        # Too big for one object: several touching ones, for merge() to split if it knows them.
        big = keep[share[keep] > s.max_area]
        keep = keep[share[keep] <= s.max_area]
        if keep.size == 0 and big.size == 0:
            return Detections.empty()
        h, w = self._shape or mask.shape
        x, y = stats[keep, cv2.CC_STAT_LEFT], stats[keep, cv2.CC_STAT_TOP]
        bw, bh = stats[keep, cv2.CC_STAT_WIDTH], stats[keep, cv2.CC_STAT_HEIGHT]
        xyxy = np.stack([x, y, x + bw, y + bh], axis=1).astype(np.float32).reshape(-1, 4) * self._factor
        np.clip(xyxy, 0, [w, h, w, h], out=xyxy)
        return Blobs(
            xyxy,
            np.full(len(keep), s.confidence, np.float32),
            (s.label,) * len(keep),
            components=labels,
            ids=tuple(int(k) for k in keep),
            oversize=tuple(int(k) for k in big),
            factor=self._factor,
            area=(s.min_area * mask.size, s.max_area * mask.size),
            label=s.label,
            score=s.confidence,
        )


def _iou_and_cover(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU of every ``a`` box with every ``b`` box, and the share of each ``b`` box inside each ``a`` box."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    iou = inter / np.maximum(union, 1e-9)
    cover = inter / np.maximum(area_b[None, :], 1e-9)
    return iou, cover


def merge(
    detections: Detections, blobs: Detections, iou: float = 0.3, expected: np.ndarray | None = None
) -> Detections:
    """The detector's boxes plus the blobs no detector box accounts for.

    A blob is dropped when a detector box overlaps it with an IoU of ``iou``
    or more, or covers half of it or more: where both see something the
    detector's class wins, if it is a person or a vehicle. A carried-object
    box (a "suitcase") on a moving blob is the detector mistaking what it
    sees from above: it takes the blob's class, so one car is not tracked
    as a suitcase and stays one track of its class.

    A detector box that overlaps a blob by ``iou`` is that blob's object: it
    gets at least the blob's confidence (however weakly the detector scored
    it, it moves: it can start and keep a track as the blob would have), and
    the blob's box. The blob is the measurement the tracker gets in every frame,
    the detector's box only now and then; the two differ (a car's blob takes in
    its shadow), and a track whose box jumped between them in turn would be
    lost when the detector's tighter box overlaps the blob-sized prediction too
    little.

    ``expected`` are the boxes where the tracker expects objects of the blobs'
    class in this frame; with the detector's boxes they split blobs that hold
    several objects (see :func:`split`). The detector's faint boxes
    (:attr:`Detections.faint`) are kept as they are, for the tracker's second look.

    >>> def boxes(*xyxy, label="car", conf=0.5):
    ...     return Detections(np.array(xyxy, np.float32), np.full(len(xyxy), conf, np.float32),
    ...                       (label,) * len(xyxy))
    >>> found = merge(boxes([0, 0, 10, 10], label="truck"), boxes([1, 1, 11, 11], [50, 50, 60, 60]))
    >>> found.labels, found.xyxy[:, 0].tolist()
    (('truck', 'car'), [1.0, 50.0])
    >>> found = merge(boxes([0, 0, 10, 10], label="suitcase", conf=0.1), boxes([1, 1, 11, 11]))
    >>> found.labels, found.confidence.tolist()
    (('car',), [0.5])
    """
    merged = _merge_boxes(detections, blobs, iou, expected)
    return merged if detections.faint is None else replace(merged, faint=detections.faint)


def _merge_boxes(
    detections: Detections, blobs: Detections, iou: float, expected: np.ndarray | None
) -> Detections:
    # A detector box bigger than any object of this camera (a "car" as big as the picture,
    # which SSD reports on a road seen from above) accounts for no blob.
    largest = float(blobs.area[1]) * blobs.factor**2 if isinstance(blobs, Blobs) else np.inf
    if isinstance(blobs, Blobs) and (len(blobs) or blobs.oversize):
        blobs = split(blobs, detections, expected)
    if len(blobs) == 0:
        return detections
    if len(detections) == 0:
        return blobs
    overlap, cover = _iou_and_cover(detections.xyxy, blobs.xyxy)
    wh = detections.xyxy[:, 2:] - detections.xyxy[:, :2]
    too_big = wh[:, 0] * wh[:, 1] > largest
    overlap[too_big], cover[too_big] = 0.0, 0.0
    labels = list(detections.labels)
    confidence = detections.confidence.astype(np.float32)
    xyxy = detections.xyxy.astype(np.float32)
    for i in np.flatnonzero(overlap.max(axis=1) >= iou):
        j = int(overlap[i].argmax())
        if labels[i] not in TRAFFIC:
            labels[i] = blobs.labels[j]
        confidence[i] = max(confidence[i], blobs.confidence[j])
        xyxy[i] = blobs.xyxy[j]
    detections = Detections(xyxy, confidence, tuple(labels))
    unmatched = ~((overlap >= iou) | (cover >= 0.5)).any(axis=0)
    if not unmatched.any():
        return detections
    extra = blobs.select(unmatched)
    return Detections(
        np.concatenate([detections.xyxy, extra.xyxy]).astype(np.float32),
        np.concatenate([detections.confidence, extra.confidence]).astype(np.float32),
        detections.labels + extra.labels,
    )


#: Share of an object's box inside a blob's box for the object to be counted as in the blob.
INSIDE = 0.5
#: Overlap (IoU) at which two known boxes are one object.
SAME_IOU = 0.3


def split(blobs: Blobs, detections: Detections, expected: np.ndarray | None = None) -> Detections:
    """The blob boxes, with each blob that holds several known objects split between them.

    The objects known in a blob are the detector's boxes and the ``expected``
    boxes (where the tracker expects its tracks now) that are no detector box's
    object, each with at least :data:`INSIDE` of its box inside the blob's. With
    two or more, the blob is cut between them where it is narrowest (see
    :func:`_cut`); the pixels of each expected object's part make its box, when their area is an object's
    (``Blobs.area``), and those of the detector's objects are left to the
    detector's boxes. A blob with one known object or none is kept as it is,
    except one bigger than ``max_area`` (``Blobs.oversize``), which is dropped.

    >>> comp = np.zeros((10, 20), np.int32)
    >>> comp[2:8, 2:18] = 1  # two objects side by side, one blob
    >>> blobs = Blobs(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), (), components=comp,
    ...               oversize=(1,), factor=2, area=(4.0, 60.0), label="car", score=0.5)
    >>> known = np.array([[4, 4, 20, 16], [20, 4, 36, 16]], np.float32)
    >>> split(blobs, Detections.empty(), known).xyxy.tolist()
    [[4.0, 4.0, 20.0, 16.0], [20.0, 4.0, 36.0, 16.0]]
    """
    f = blobs.factor
    h, w = blobs.components.shape[:2]
    size = np.array([w, h, w, h], np.float32) * f
    exp = (
        np.zeros((0, 4), np.float32) if expected is None else np.asarray(expected, np.float32).reshape(-1, 4)
    )
    exp = np.clip(exp, 0, size)
    exp = exp[(exp[:, 2] > exp[:, 0]) & (exp[:, 3] > exp[:, 1])]
    keep: list[np.ndarray] = []
    candidates = [(int(k), box) for k, box in zip(blobs.ids, blobs.xyxy, strict=True)]
    candidates += [(int(k), None) for k in blobs.oversize]
    for k, box in candidates:
        ys, xs = np.nonzero(blobs.components == k)
        if not len(xs):
            continue
        region = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32) * f
        anchors, detected = _anchors(region, detections.xyxy, exp)
        if len(anchors) < 2:
            if box is not None:
                keep.append(box)
            continue
        owner = _cut(xs, ys, anchors / f)
        lo, hi = blobs.area
        for j in np.flatnonzero(~detected):
            mine = owner == j
            n = int(mine.sum())
            if n < lo or n > hi:
                continue
            piece = [xs[mine].min(), ys[mine].min(), xs[mine].max() + 1, ys[mine].max() + 1]
            keep.append(np.minimum(np.array(piece, np.float32) * f, size))
    if not keep:
        return Detections.empty()
    return Detections(
        np.stack(keep).astype(np.float32),
        np.full(len(keep), blobs.score, np.float32),
        (blobs.label,) * len(keep),
    )


def _anchors(region: np.ndarray, detected: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The known objects' boxes in a blob's ``region``, and which of them are the detector's."""
    boxes: list[np.ndarray] = []
    by_detector: list[bool] = []
    for group, is_detected in ((detected, True), (expected, False)):
        if not len(group):
            continue
        _, inside = _iou_and_cover(region[None, :], group)
        for box in group[inside[0] >= INSIDE]:
            if boxes and _same(np.stack(boxes), box):
                continue  # already known: the detector's box of a tracked object, or one object twice
            boxes.append(box)
            by_detector.append(is_detected)
    return np.array(boxes, np.float32).reshape(-1, 4), np.array(by_detector, bool)


def _same(boxes: np.ndarray, box: np.ndarray) -> bool:
    """Whether ``box`` is the object of one of ``boxes``: they overlap by :data:`SAME_IOU`, or
    the smaller of the two lies mostly inside the other (a detector's tight box of a car in
    the tracker's box of it with its shadow)."""
    overlap, cover = _iou_and_cover(boxes, box[None, :])
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inter = cover[:, 0] * area
    inside = inter / np.maximum(np.minimum(areas, area), 1e-9)
    return bool((overlap[:, 0] >= SAME_IOU).any() or (inside >= INSIDE).any())


def _cut(xs: np.ndarray, ys: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Which anchor box each blob pixel ``(xs, ys)`` belongs to, cutting the blob across one axis.

    Objects that touch are side by side (cars in neighbouring lanes) or one behind the
    other: the axis is the one along which the anchors' boxes overlap least (cars passing
    each other overlap along the road, not across it), and between each two neighbouring
    boxes the blob is cut at its narrowest (fewest pixels across) between the first box's
    far side and the second's near side (where those meet, there). Nearest boxes would not
    do: the detector's box of an object is tighter than its moving pixels (its shadow moves
    with it), so the pixels nearest to its neighbour's box would be given to the neighbour.

    >>> xs = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 6, 7, 8])  # a thin neck at x = 3..5
    >>> ys = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    >>> _cut(xs, ys, np.array([[0, 0, 2, 2], [6, 0, 9, 2]], np.float32)).tolist()
    [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1]
    """
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    sizes = np.maximum(anchors[:, 2:] - anchors[:, :2], 1.0)
    # Per axis, how much each two boxes overlap along it, as a share of the smaller one.
    common = np.minimum(anchors[:, None, 2:], anchors[None, :, 2:]) - np.maximum(
        anchors[:, None, :2], anchors[None, :, :2]
    )
    shares = np.clip(common, 0, None) / np.minimum(sizes[:, None], sizes[None, :])
    pairs = ~np.eye(len(anchors), dtype=bool)
    axis = int(shares[pairs].mean(axis=0).argmin())
    coord = xs if axis == 0 else ys
    across = np.bincount(coord, minlength=int(coord.max()) + 1)
    order = np.argsort(centres[:, axis], kind="stable")
    cuts = []
    for a, b in itertools.pairwise(order):
        ends = sorted((float(anchors[a, axis + 2]), float(anchors[b, axis])))
        lo = int(np.clip(round(ends[0]), 0, len(across) - 1))
        hi = int(np.clip(round(ends[1]), lo, len(across) - 1))
        gap = across[lo : hi + 1]
        # Of equally narrow places (a blob as wide everywhere), the one half way between.
        narrowest = np.flatnonzero(gap == gap.min())
        cuts.append(lo + int(narrowest[np.abs(narrowest - (hi - lo) / 2).argmin()]))
    # Pixels before the first cut are the first anchor's, and so on; a cut column goes to the next.
    return order[np.searchsorted(np.array(cuts), coord, side="right")]
