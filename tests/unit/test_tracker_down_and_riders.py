"""The tracker keeps a person who goes down (weak, wide boxes) and tracks small cyclists."""

from __future__ import annotations

import numpy as np

from camsight.tracking.tracker import MultiClassTracker, corroborate_riders
from camsight.vision.detections import Detections

IMAGE = np.full((240, 640, 3), 90, np.uint8)


def _dets(*rows: tuple[str, float, tuple[float, float, float, float]]) -> Detections:
    if not rows:
        return Detections.empty()
    return Detections(
        np.array([r[2] for r in rows], np.float32),
        np.array([r[1] for r in rows], np.float32),
        tuple(r[0] for r in rows),
    )


def test_a_person_who_falls_keeps_their_track() -> None:
    tracker = MultiClassTracker(fps=30)
    keys = set()
    t = 0.0
    for _ in range(10):  # standing, confidently seen
        keys |= {b.key for b in tracker.update(_dets(("person", 0.8, (440, 80, 500, 200))), IMAGE, t)}
        t += 1 / 30
    for _ in range(3):  # missed while falling
        tracker.update(Detections.empty(), IMAGE, t)
        t += 1 / 30
    down = []
    for _ in range(5):  # going down: a wider, lower, weak box where they were
        down += tracker.update(_dets(("person", 0.3, (435, 120, 505, 200))), IMAGE, t)
        t += 1 / 30
    assert down and {b.key for b in down} == keys


def test_a_weak_upright_box_does_not_revive_a_lost_walker() -> None:
    tracker = MultiClassTracker(fps=30)
    t = 0.0
    for _ in range(10):
        tracker.update(_dets(("person", 0.8, (440, 80, 480, 200))), IMAGE, t)
        t += 1 / 30
    for _ in range(3):
        tracker.update(Detections.empty(), IMAGE, t)
        t += 1 / 30
    assert tracker.update(_dets(("person", 0.3, (440, 80, 480, 200))), IMAGE, t) == []


def test_a_small_cyclist_is_tracked_at_five_frames_a_second() -> None:
    tracker = MultiClassTracker(fps=5)
    seen = []
    for k in range(8):  # a 45 px rider on a bicycle, moving 18 px a frame; each scored 0.35
        x = 100 + 18 * k
        frame = _dets(("person", 0.45, (x + 8, 10, x + 34, 55)), ("bicycle", 0.35, (x, 35, x + 45, 70)))
        seen += [b for b in tracker.update(frame, IMAGE, k / 5) if b.label == "person"]
    assert len({b.key for b in seen}) == 1 and len(seen) >= 5


def test_riders_vouch_for_each_other_only_when_they_overlap() -> None:
    d = _dets(
        ("person", 0.4, (10, 0, 30, 40)),
        ("bicycle", 0.3, (5, 25, 35, 50)),
        ("person", 0.4, (200, 0, 220, 40)),
    )
    fused, riders = corroborate_riders(d)
    assert fused.confidence[0] > 0.6 and fused.confidence[1] > 0.6
    assert abs(float(fused.confidence[2]) - 0.4) < 1e-6 and riders.tolist() == [True, True, False]
