"""A second look where a person was lost mid-picture: someone falling or lying down.

A detector sees a person going down weakly: the wide, low box of someone lying on a floor
scores far below an upright walker's, often under the detector's floor, and at a few analysed
frames a second the box jumps from standing to lying between two frames, too far for overlap
to connect them. The tracker then drops the person just as they fall.

For a confirmed person track that this frame did not continue, :func:`match_lost` looks
again at the boxes nobody took (the frame's weak boxes, and faint ones down to
``vision.detections.FAINT_CONFIDENCE``), for a bounded time and only in two places:

- where the person was last seen: a wide box overlapping the track's last or predicted box
  by :data:`RECOVER_IOU` (someone lying still stays where they lay);
- the *fall zone* of the person's last upright box, within :data:`FALL_SECONDS` of it: a body
  as long as the standing person was tall, lying on the floor around where they stood, is
  inside the region that reaches :data:`FALL_REACH` heights to either side of the box's
  centre and :data:`FALL_BELOW` heights below their feet (falling towards the camera ends
  lower in the picture). Only for a person lost mid-picture (one at the picture's edge walked
  out of it) and not hidden behind another tracked person (in a crowd, that is why people
  are lost, and the boxes around them are their neighbours').

Both need a wide box (``width >= RECOVER_ASPECT * height``), the shape of someone going
down; an upright walker's box never continues a track this way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import supervision as sv

#: Overlap with a lost person's last or predicted box at which a box continues the track: as
#: strict as BoT-SORT's own weak-box stage.
RECOVER_IOU = 0.5
#: Width for its height from which a box is someone going down (falling, lying, crouching).
#: Upright walkers (width ~0.4 of height) lost in a crowd are not continued by weak boxes, which
#: there are as often a neighbour's (PETS09: MOTA 0.836 -> 0.826 without this).
RECOVER_ASPECT = 0.6
#: Seconds after the last upright box in which a box in its fall zone continues the track:
#: a fall, from upright to on the floor, takes one or two seconds.
FALL_SECONDS = 2.0
#: The fall zone reaches this many upright heights to either side of the box's centre ...
FALL_REACH = 1.0
#: ... and this many below its bottom (the feet).
FALL_BELOW = 0.5
#: Share of a box's area that must be inside the fall zone.
INSIDE_SHARE = 0.8
#: A lost person whose last box is covered this much by people tracked in this frame is hidden
#: behind them, not down; a box covered this much by one of them is that person's.
HIDDEN_SHARE = 0.3
#: A box this close to the picture's edge (pixels) is cut by it.
EDGE_PIXELS = 2.0


@dataclass(frozen=True)
class LostPerson:
    """What the second look knows of one confirmed person track this frame did not continue.

    ``last``: its last box; ``predicted``: where the tracker expects it now; ``upright``: its
    last upright box (narrower than ``RECOVER_ASPECT``) and ``since_upright`` the seconds since
    then (None when it was never seen upright).
    """

    last: np.ndarray
    predicted: np.ndarray
    upright: np.ndarray | None = None
    since_upright: float = float("inf")


def covered(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of each (N, 4) box in ``a`` covered by each (M, 4) box in ``b``, shape (N, M).

    >>> covered(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]])).tolist()
    [[0.5]]
    """
    return _intersection(a, b) / np.maximum(_area(a)[:, None], 1e-9)


def fall_zone(upright: np.ndarray) -> np.ndarray:
    """Where someone whose upright box is ``upright`` (x1, y1, x2, y2) can lie after a fall.

    >>> fall_zone(np.array([100.0, 50.0, 140.0, 150.0])).tolist()
    [20.0, 50.0, 220.0, 200.0]
    """
    x1, y1, x2, y2 = (float(v) for v in upright)
    h = y2 - y1
    cx = (x1 + x2) / 2.0
    return np.array([cx - FALL_REACH * h, y1, cx + FALL_REACH * h, y2 + FALL_BELOW * h], np.float64)


def in_fall_zone(upright: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which (M, 4) ``boxes`` are someone lying after falling from ``upright``.

    Mostly inside its :func:`fall_zone`, with their bottom in the lower half of the upright
    box or below it (a fallen person is on the floor, not up in the air), and over the spot
    where the feet were: someone falls where they stand. (Without that last rule, faint wide
    boxes of the scene and of passers-by beside PETS09's walkers continued their tracks: MOTA
    0.836 -> 0.829, even with such boxes required to be 0.6 of the walker's height wide.)

    >>> up = np.array([100.0, 50.0, 140.0, 150.0])
    >>> in_fall_zone(up, np.array([[60, 110, 160, 160], [60, 20, 160, 70], [300, 110, 400, 160]])).tolist()
    [True, False, False]
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    inside = covered(boxes, fall_zone(upright)[None])[:, 0] >= INSIDE_SHARE
    h = float(upright[3] - upright[1])
    on_floor = boxes[:, 3] >= float(upright[1]) + 0.5 * h
    # Someone falls where they stand: the body on the floor covers the spot where the feet were.
    fx, fy = (float(upright[0]) + float(upright[2])) / 2.0, float(upright[3])
    feet = (boxes[:, 0] <= fx) & (fx <= boxes[:, 2]) & (boxes[:, 1] <= fy) & (fy <= boxes[:, 3])
    return inside & on_floor & feet


def wide(boxes: np.ndarray) -> np.ndarray:
    """Which (M, 4) boxes have the shape of someone going down (see :data:`RECOVER_ASPECT`).

    >>> wide(np.array([[0, 0, 40, 100], [0, 0, 100, 60]])).tolist()
    [False, True]
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return w >= RECOVER_ASPECT * np.maximum(h, 1e-6)


def cut_by_edge(box: np.ndarray, frame_size: tuple[int, int] | None) -> bool:
    """Whether ``box`` touches the edge of a picture of ``frame_size`` (width, height).

    >>> cut_by_edge(np.array([0, 10, 50, 60]), (100, 80)), cut_by_edge(np.array([10, 10, 50, 60]), (100, 80))
    (True, False)
    """
    if frame_size is None:
        return False
    w, h = frame_size
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1 <= EDGE_PIXELS or y1 <= EDGE_PIXELS or x2 >= w - EDGE_PIXELS or y2 >= h - EDGE_PIXELS


def match_lost(
    lost: Sequence[LostPerson],
    boxes: np.ndarray,
    confidence: np.ndarray,
    seen: np.ndarray,
    frame_size: tuple[int, int] | None = None,
) -> list[tuple[int, int]]:
    """Pairs (lost person, box) in which a box nobody took continues a lost person's track.

    ``boxes`` (M, 4) and ``confidence`` (M,): the frame's untaken person boxes, weak and faint;
    ``seen`` (K, 4): the boxes of the people tracked in this frame; ``frame_size``: the
    picture's (width, height). A box where the person was last seen (overlap) beats one in
    the fall zone; among those, the more confident box wins. Each person and box is used once.

    >>> standing = np.array([100.0, 50.0, 140.0, 150.0])
    >>> person = LostPerson(last=standing, predicted=standing, upright=standing, since_upright=0.4)
    >>> lying = np.array([[70.0, 110.0, 170.0, 160.0]])
    >>> match_lost([person], lying, np.array([0.05]), np.zeros((0, 4)), (640, 480))
    [(0, 0)]
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(lost) or not len(boxes):
        return []
    seen = np.asarray(seen, np.float64).reshape(-1, 4)
    candidate = wide(boxes)
    if len(seen):
        # A box mostly over someone tracked in this frame is theirs (a part of them, or a
        # second box the detector put on them).
        candidate &= covered(boxes, seen).max(axis=1) < HIDDEN_SHARE
    if not candidate.any():
        return []
    score = np.zeros((len(lost), len(boxes)))
    for i, person in enumerate(lost):
        last = np.asarray(person.last, np.float64).reshape(1, 4)
        if len(seen) and float(np.minimum(covered(last, seen).sum(), 1.0)) >= HIDDEN_SHARE:
            continue  # hidden behind someone: the boxes around them are their neighbours'
        if wide(last)[0]:
            # Down already (fallen, lying): they stay where they lay. Overlap wins over the fall
            # zone. Not for someone last seen upright: boxes there are walkers' more often.
            overlap = np.maximum(
                sv.box_iou_batch(last, boxes)[0],
                sv.box_iou_batch(np.asarray(person.predicted, np.float64).reshape(1, 4), boxes)[0],
            )
            score[i] = np.where(candidate & (overlap >= RECOVER_IOU), 1.0 + confidence, 0.0)
        up = person.upright
        if up is not None and person.since_upright <= FALL_SECONDS and not cut_by_edge(up, frame_size):
            fallen = candidate & in_fall_zone(np.asarray(up, np.float64), boxes)
            score[i] = np.where((score[i] == 0) & fallen, confidence, score[i])
    return greedy_pairs(score, np.nextafter(0.0, 1.0))


def greedy_pairs(score: np.ndarray, minimum: float) -> list[tuple[int, int]]:
    """(row, column) pairs, best score first, each row and column once, scores at least ``minimum``.

    Greedy rather than optimal: it pairs a handful of lost tracks with a handful of boxes.

    >>> greedy_pairs(np.array([[0.9, 0.8], [0.7, 0.6]]), 0.5)
    [(0, 0), (1, 1)]
    """
    pairs: list[tuple[int, int]] = []
    used_rows: set[int] = set()
    used_columns: set[int] = set()
    for flat in np.argsort(-score, axis=None, kind="stable"):
        i, j = (int(v) for v in np.unravel_index(flat, score.shape))
        if score[i, j] < minimum:
            break
        if i in used_rows or j in used_columns:
            continue
        pairs.append((i, j))
        used_rows.add(i)
        used_columns.add(j)
    return pairs


def _area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)
