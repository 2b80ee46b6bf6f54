"""MultiClassTracker: stable ids frame to frame, class groups kept apart."""

from __future__ import annotations

import inspect
from collections import Counter

import numpy as np
import pytest

from camsight.tracking.tracker import MultiClassTracker, TrackedBox, TrackerSettings
from camsight.vision.detections import Detections

W, H = 640, 360
FPS = 10
COLOURS = {"person": (40, 40, 200), "bicycle": (200, 120, 30), "car": (30, 200, 30)}


def render(boxes: list[tuple[str, tuple[float, float, float, float]]]) -> np.ndarray:
    """A frame with each box painted in its class colour (the tracker may look at colours)."""
    image = np.full((H, W, 3), 90, np.uint8)
    image[::8] = 110
    for label, (x1, y1, x2, y2) in boxes:
        image[int(y1) : int(y2), int(x1) : int(x2)] = COLOURS[label]
        image[int(y1) : int((y1 + y2) / 2), int(x1) : int(x2), 1] = 160  # two-tone, like clothes
    return image


def detections(boxes: list[tuple[str, tuple[float, float, float, float]]], conf: float = 0.9) -> Detections:
    return Detections(
        np.array([b for _, b in boxes], np.float32).reshape(-1, 4),
        np.full(len(boxes), conf, np.float32),
        tuple(label for label, _ in boxes),
    )


def update(
    tracker: MultiClassTracker, boxes: list[tuple[str, tuple[float, float, float, float]]], t: float, conf=0.9
) -> list[TrackedBox]:
    """Feed one frame. The tracker may take the image (appearance) or not, depending on its version."""
    dets = detections(boxes, conf)
    if "image" in inspect.signature(tracker.update).parameters:
        return tracker.update(dets, render(boxes), t=t)
    return tracker.update(dets, t=t)


def walker(i: int, x0: float = 100, y0: float = 100, dx: float = 3, dy: float = 1) -> tuple:
    x, y = x0 + dx * i, y0 + dy * i
    return (x, y, x + 40, y + 100)


def test_no_detections_no_tracks():
    tracker = MultiClassTracker(fps=FPS)
    assert update(tracker, [], 0.0) == []
    assert update(tracker, [], 0.1) == []


def test_a_box_moving_a_few_pixels_a_frame_keeps_one_id():
    tracker = MultiClassTracker(fps=FPS)
    seen = []
    for i in range(40):
        out = update(tracker, [("person", walker(i))], i / FPS)
        seen.append(out)
    keys = {b.key for frame in seen for b in frame}
    assert len(keys) == 1
    # Confirmed after a couple of frames, then reported in every frame.
    first = next(i for i, frame in enumerate(seen) if frame)
    assert first <= TrackerSettings().min_hits
    assert all(len(frame) == 1 for frame in seen[first:])
    box = seen[-1][0]
    assert box.label == "person"
    assert box.xyxy == pytest.approx(walker(39), abs=3)
    assert 0 < box.confidence <= 1


def test_two_people_apart_keep_their_own_ids():
    tracker = MultiClassTracker(fps=FPS)
    ids: dict[str, Counter] = {"left": Counter(), "right": Counter()}
    for i in range(30):
        left, right = walker(i, x0=50, dx=3), walker(i, x0=500, dx=-3)
        for b in update(tracker, [("person", left), ("person", right)], i / FPS):
            side = "left" if b.xyxy[0] < 300 and abs(b.xyxy[0] - left[0]) < 10 else "right"
            ids[side][b.key] += 1
    assert len(ids["left"]) == 1 and len(ids["right"]) == 1
    assert set(ids["left"]) != set(ids["right"])


def test_person_and_bicycle_overlapping_keep_separate_tracks():
    """A person walking a bicycle: heavily overlapping boxes of two classes."""
    tracker = MultiClassTracker(fps=FPS)
    labels_by_key: dict[tuple, set] = {}
    for i in range(30):
        person = walker(i, x0=200, dx=4)
        x1, y1, x2, y2 = person
        bicycle = (x1 - 10, y1 + 45, x2 + 30, y2 + 5)
        for b in update(tracker, [("person", person), ("bicycle", bicycle)], i / FPS):
            labels_by_key.setdefault(b.key, set()).add(b.label)
    assert len(labels_by_key) == 2
    assert sorted(next(iter(v)) for v in labels_by_key.values()) == ["bicycle", "person"]
    assert all(len(v) == 1 for v in labels_by_key.values())
    # The two tracks live in different class groups.
    assert len({key[0] for key in labels_by_key}) == 2


def test_a_short_gap_keeps_the_id_and_a_long_one_starts_a_new_track():
    tracker = MultiClassTracker(fps=FPS, settings=TrackerSettings(lost_seconds=2.0))
    box = ("car", (300, 150, 380, 200))
    keys = []
    t = 0.0
    for _ in range(10):
        keys += [b.key for b in update(tracker, [box], t)]
        t += 0.1
    before = set(keys)
    # Hidden for 1 s (less than lost_seconds) ...
    for _ in range(10):
        assert update(tracker, [], t) == []
        t += 0.1
    after_short = set()
    for _ in range(5):
        after_short |= {b.key for b in update(tracker, [box], t)}
        t += 0.1
    assert len(before) == 1
    assert after_short == before
    # ... hidden for 5 s (more than lost_seconds): a new identity.
    for _ in range(50):
        update(tracker, [], t)
        t += 0.1
    after_long = set()
    for _ in range(5):
        after_long |= {b.key for b in update(tracker, [box], t)}
        t += 0.1
    assert len(after_long) == 1
    assert after_long != before


def test_weak_detections_alone_start_no_track():
    tracker = MultiClassTracker(fps=FPS)
    out = [update(tracker, [("person", walker(i))], i / FPS, conf=0.2) for i in range(20)]
    assert all(frame == [] for frame in out)
