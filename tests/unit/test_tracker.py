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
# One car whatever the detector calls it: the paint does not change with the label.
COLOURS |= dict.fromkeys(("bus", "truck", "suitcase"), COLOURS["car"])


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


def drive(i: int) -> tuple:
    """A car driving up the picture, as seen from above."""
    return (300, 300 - 8 * i, 380, 420 - 8 * i)


def test_class_flicker_on_one_vehicle_stays_one_track():
    """Seen from above, a car is called car, bus or truck from frame to frame: still one object."""
    tracker = MultiClassTracker(fps=FPS)
    labels = ["car", "bus", "truck", "car", "car", "bus", "car", "truck", "car", "car"] * 2
    keys: Counter = Counter()
    for i, label in enumerate(labels):
        keys.update(b.key for b in update(tracker, [(label, drive(i))], i / FPS))
    assert len(keys) == 1


def test_a_car_seen_as_a_suitcase_then_a_bus_stays_one_track():
    """Vehicles and carried objects never share a box, so a flicker between them is one object."""
    tracker = MultiClassTracker(fps=FPS)
    keys: Counter = Counter()
    for i in range(20):
        label = "suitcase" if i < 8 else "bus"
        out = update(tracker, [(label, drive(i))], i / FPS, conf=0.6)
        keys.update(b.key for b in out)
    assert len(keys) == 1


def test_overlapping_boxes_of_two_vehicle_classes_are_one_track():
    """A parked van detected as both car and truck in the same frames is one track, not two."""
    tracker = MultiClassTracker(fps=FPS)
    van = (400, 100, 500, 160)
    keys: set = set()
    for i in range(20):
        dets = Detections(
            np.array([van, (402, 98, 503, 161)], np.float32),
            np.array([0.7, 0.5], np.float32),
            ("truck", "car"),
        )
        out = tracker.update(dets, render([("car", van)]), t=i / FPS)
        assert len(out) <= 1
        keys |= {b.key for b in out}
    assert len(keys) == 1


def test_each_class_keeps_its_own_activation_threshold_in_a_shared_tracker():
    """Vehicles and bags are associated together, but a bag still needs a bag's confidence."""
    settings = TrackerSettings(activation={"person": 0.6, "vehicle": 0.3, "bicycle": 0.4, "carried": 0.5})
    tracker = MultiClassTracker(fps=FPS, settings=settings)
    bag, car = (100, 300, 130, 330), (400, 100, 500, 160)
    seen: Counter = Counter()
    for i in range(10):
        dets = Detections(
            np.array([bag, car], np.float32), np.array([0.4, 0.4], np.float32), ("handbag", "car")
        )
        seen.update(b.label for b in tracker.update(dets, render([("car", car)]), t=i / FPS))
    assert seen["car"] > 0
    assert seen["handbag"] == 0


def test_a_new_track_reports_the_boxes_it_had_before_it_was_confirmed():
    settings = TrackerSettings(min_hits=3)
    tracker = MultiClassTracker(fps=FPS, settings=settings)
    update(tracker, [], -1 / FPS)  # boxes of the video's very first frame are confirmed at once
    frames = [update(tracker, [("person", walker(i))], i / FPS) for i in range(6)]
    first = next(i for i, frame in enumerate(frames) if frame)
    (box,) = frames[first]
    assert first == settings.min_hits - 1
    assert [t for t, _ in box.earlier] == pytest.approx([i / FPS for i in range(first)])
    for i, (_, early) in enumerate(box.earlier):
        assert early.key == box.key
        assert early.xyxy == pytest.approx(walker(i), abs=1)
    # Only the confirming frame carries them.
    assert all(b.earlier == () for frame in frames[first + 1 :] for b in frame)


def test_only_the_videos_first_frame_confirms_tracks_at_once():
    """A group's first box later in the video waits for min_hits like any other."""
    tracker = MultiClassTracker(fps=FPS)
    assert update(tracker, [("person", walker(0))], 0.0) != []  # the first frame: confirmed at once
    assert update(tracker, [("person", walker(1)), ("car", (400, 100, 500, 160))], 0.1)[0].label == "person"
    assert all(b.label != "car" for b in update(tracker, [("person", walker(2))], 0.2))
