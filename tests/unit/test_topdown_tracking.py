"""Cars seen from straight above (issue 17): each car one track from the moment it drives in to
the moment it has driven out, even when it touches its neighbour or leaves through the picture's edge.

Synthetic scenes through the real pieces: MovingObjects (MOG2), merge/split and the tracker.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from camsight.tracking.tracker import MultiClassTracker
from camsight.vision.detections import Detections
from camsight.vision.moving_objects import Blobs, MovingObjects, MovingObjectSettings, merge, split

H, W = 432, 768
FPS = 5.0
ROAD = np.random.default_rng(3).integers(80, 140, (H, W)).astype(np.int16)


def frame(i: int, cars: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """Frame ``i``: a textured road with sensor noise and cars ``(x1, y1, x2, y2, grey)``.

    Each car is painted ``grey`` with a dark windscreen across it and a rear half in the
    other extreme of grey (a light bonnet, a dark boot): its colours change as it drives out.
    """
    image = ROAD + np.random.default_rng(100 + i).integers(-3, 4, (H, W))
    for x1, y1, x2, y2, grey in cars:
        mid = y1 + (y2 - y1) // 2
        image[max(y1, 0) : max(mid, 0), x1:x2] = grey
        image[max(mid, 0) : max(y2, 0), x1:x2] = 255 - grey
        image[max(y1 + (y2 - y1) // 3, 0) : max(mid, 0), x1:x2] = grey // 3
    return np.clip(image, 0, 255).astype(np.uint8)


def run(scene: list[list[tuple[int, int, int, int, int]]]) -> list[list[tuple[tuple[str, int], tuple]]]:
    """Each frame's tracked (key, box) pairs, the frames analysed as the pipeline does."""
    blobs = MovingObjects(MovingObjectSettings("car", max_area=0.3))
    tracker = MultiClassTracker(fps=FPS)
    out = []
    for i, cars in enumerate(scene):
        gray = frame(i, cars)
        found = blobs.update(gray, i / FPS)
        dets = merge(Detections.empty(), found, expected=tracker.expected("car"))
        image = np.repeat(gray[:, :, None], 3, axis=2)
        out.append([(b.key, b.xyxy) for b in tracker.update(dets, image, i / FPS)])
    return out


def test_two_cars_side_by_side_keep_their_own_tracks_while_their_blobs_touch():
    # Two cars in neighbouring lanes pass each other; for several frames they touch and the
    # background model sees one moving blob. Before, that blob was one box (or none when
    # too big): one car's track took it and the other's was lost, then restarted.
    scene = []
    for i in range(30):
        cars = []
        if i >= 8:  # after the warm-up
            down = -150 + 24 * (i - 8)
            up = H + 10 - 24 * (i - 8)
            cars = [(200, down, 292, down + 150, 220), (294, up, 386, up + 150, 60)]
        scene.append(cars)
    frames = run(scene)
    lanes: dict[str, Counter] = {"left": Counter(), "right": Counter()}
    for boxes in frames:
        for key, (x1, _, x2, _) in boxes:
            lanes["left" if (x1 + x2) / 2 < 293 else "right"][key] += 1
    assert len(lanes["left"]) == 1, lanes
    assert len(lanes["right"]) == 1, lanes
    assert set(lanes["left"]) != set(lanes["right"])
    # While they touch (frames 16-19) both are still reported, each with a box of its own.
    for boxes in frames[16:20]:
        assert len(boxes) == 2, boxes
        left, right = sorted(boxes, key=lambda kb: kb[1][0])
        assert left[1][2] <= 300 and right[1][0] >= 286, boxes


#: A car seen from above, front to back: bonnet, windscreen, roof, boot (BGR).
PAINT = [(40, 40, 220), (40, 200, 40), (220, 60, 40), (200, 200, 200)]


def car_from_above(y: int, length: int, x1: int = 300, x2: int = 420) -> np.ndarray:
    """A frame with a car whose front is at ``y``, driving up; the picture cuts off what is above 0."""
    image = np.full((H, W, 3), 90, np.uint8)
    image[::8] = 110
    for k, colour in enumerate(PAINT):
        a, b = y + k * length // 4, y + (k + 1) * length // 4
        image[max(a, 0) : max(min(b, H), 0), x1:x2] = colour
    return image


def test_a_car_driving_out_through_the_top_edge_is_tracked_until_it_is_gone():
    # At 5 fps a car moves a fifth of its length between frames; while it drives out its box
    # shrinks against the edge and shows less of it every frame (no bonnet, then no roof).
    # Its prediction runs past the edge, and its colours are no longer the track's: before,
    # the track was lost half way out. Judged on the prediction clipped to the picture and,
    # for a box cut by the edge, on overlap alone, it is followed to the end.
    tracker = MultiClassTracker(fps=FPS)
    length = 300
    reported = []
    for i in range(20):
        y = 100 - 60 * i
        if y + length <= 10:
            break
        box = np.array([[300, max(y, 0), 420, min(y + length, H)]], np.float32)
        # A moving blob's box and confidence (vision.moving_objects).
        dets = Detections(box, np.array([0.5], np.float32), ("car",))
        reported.append([b.key for b in tracker.update(dets, car_from_above(y, length), i / FPS)])
    assert len(reported) == 7
    assert all(len(keys) == 1 for keys in reported), reported
    assert len({keys[0] for keys in reported}) == 1, reported


def blob_frame(components: np.ndarray, ids: tuple[int, ...], oversize: tuple[int, ...] = ()) -> Blobs:
    """Blobs of a 1:1 component map (boxes from the components)."""
    boxes = []
    for k in ids:
        ys, xs = np.nonzero(components == k)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return Blobs(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.full(len(ids), 0.5, np.float32),
        ("car",) * len(ids),
        components=components,
        ids=ids,
        oversize=oversize,
        factor=1,
        area=(50.0, 5000.0),
    )


def test_split_gives_the_tracked_car_its_part_and_leaves_the_detected_one_to_the_detector():
    comp = np.zeros((100, 200), np.int32)
    comp[10:90, 20:70] = 1  # a tracked car ...
    comp[40:60, 70:80] = 1  # ... touching, through a narrow neck ...
    comp[5:95, 80:140] = 1  # ... a car the detector sees (its box is tighter: no shadow)
    detected = Detections(np.array([[85, 10, 135, 90]], np.float32), np.array([0.8], np.float32), ("car",))
    expected = np.array([[22, 12, 72, 88]], np.float32)
    out = split(blob_frame(comp, (1,)), detected, expected)
    assert out.labels == ("car",)
    # Cut at the neck: the tracked car's part, not the detected car's pixels beside its box.
    np.testing.assert_allclose(out.xyxy[0], [20, 10, 75, 90], atol=5)
    assert merge(detected, blob_frame(comp, (1,)), expected=expected).xyxy.tolist() == [
        [85, 10, 135, 90],
        out.xyxy[0].tolist(),
    ]


def test_split_keeps_a_blob_with_one_object_and_drops_an_oversize_one_it_cannot_split():
    comp = np.zeros((100, 200), np.int32)
    comp[10:90, 20:140] = 1
    one = np.array([[30, 10, 130, 90]], np.float32)
    assert split(blob_frame(comp, (1,)), Detections.empty(), one).xyxy.tolist() == [[20, 10, 140, 90]]
    assert len(split(blob_frame(comp, (), oversize=(1,)), Detections.empty(), one)) == 0
    # The detector's tight box inside the tracker's box of the same car (with its shadow) is
    # one object, not two: nothing to split.
    tight = Detections(np.array([[40, 10, 120, 50]], np.float32), np.array([0.7], np.float32), ("car",))
    assert split(blob_frame(comp, (1,)), tight, one).xyxy.tolist() == [[20, 10, 140, 90]]


def test_a_weak_detector_box_on_a_blob_gets_the_blobs_box_and_confidence():
    weak = Detections(np.array([[12, 10, 58, 40]], np.float32), np.array([0.12], np.float32), ("bus",))
    blob = Detections(np.array([[10, 10, 60, 80]], np.float32), np.array([0.5], np.float32), ("car",))
    out = merge(weak, blob)
    assert out.labels == ("bus",)
    assert out.confidence.tolist() == pytest.approx([0.5])
    assert out.xyxy.tolist() == [[10, 10, 60, 80]]


def test_a_detector_box_as_big_as_the_picture_hides_no_car():
    # SSD reports a "car" over the whole road seen from above: bigger than any object of
    # the camera (max_area), it is not the detector seeing the blobs' cars.
    comp = np.zeros((100, 200), np.int32)
    comp[10:60, 20:60] = 1
    comp[40:90, 120:160] = 2
    whole = Detections(np.array([[0, 0, 200, 100]], np.float32), np.array([0.3], np.float32), ("car",))
    out = merge(whole, blob_frame(comp, (1, 2)))
    assert out.xyxy.tolist() == [[0, 0, 200, 100], [20, 10, 60, 60], [120, 40, 160, 90]]
