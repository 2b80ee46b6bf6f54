"""The second look at a person lost mid-picture: faint and weak boxes where they fell or lay."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from camsight.tracking.second_look import FALL_SECONDS, LostPerson, in_fall_zone, match_lost
from camsight.tracking.tracker import MultiClassTracker
from camsight.vision.detections import Detections

SIZE = (640, 240)
IMAGE = np.full((240, 640, 3), 90, np.uint8)
STANDING = np.array([440.0, 76.0, 504.0, 200.0])  # 64 x 124, mid-picture
#: The same person on the floor 0.4 s later, fallen towards the camera (UR Fall fall-01's shapes).
LYING = np.array([407.0, 153.0, 497.0, 239.0])
NOBODY = np.zeros((0, 4))


def lost(**kw: object) -> LostPerson:
    person = LostPerson(last=STANDING, predicted=STANDING, upright=STANDING, since_upright=0.4)
    return replace(person, **kw)  # type: ignore[arg-type]


def test_a_lying_box_in_the_fall_zone_continues_the_person() -> None:
    assert match_lost([lost()], LYING[None], np.array([0.07]), NOBODY, SIZE) == [(0, 0)]


def test_nothing_continues_a_person_after_the_fall_zone_times_out() -> None:
    assert (
        match_lost([lost(since_upright=FALL_SECONDS + 0.1)], LYING[None], np.array([0.07]), NOBODY, SIZE)
        == []
    )


def test_an_upright_box_is_not_a_fallen_person() -> None:
    walker = np.array([[430.0, 110.0, 470.0, 230.0]])  # in the zone, but 40 x 120
    assert match_lost([lost()], walker, np.array([0.3]), NOBODY, SIZE) == []


def test_boxes_far_from_where_they_stood_or_up_in_the_air_are_not_them() -> None:
    far = np.array([[100.0, 150.0, 190.0, 236.0]])  # lying, but two body heights away
    high = np.array([[420.0, 40.0, 520.0, 110.0]])  # wide, but above the waist of where they stood
    assert not in_fall_zone(STANDING, np.concatenate([far, high])).any()
    assert match_lost([lost()], np.concatenate([far, high]), np.array([0.2, 0.2]), NOBODY, SIZE) == []


def test_a_fallen_body_covers_where_the_feet_were() -> None:
    beside = np.array([[340.0, 180.0, 440.0, 236.0]])  # in the zone, wide, but left of the feet
    assert not in_fall_zone(STANDING, beside).any()
    assert in_fall_zone(STANDING, LYING[None]).all()
    assert match_lost([lost()], beside, np.array([0.3]), NOBODY, SIZE) == []


def test_a_person_hidden_behind_someone_tracked_is_not_looked_for() -> None:
    neighbour = np.array([[450.0, 70.0, 510.0, 205.0]])  # tracked in this frame, in front of them
    assert match_lost([lost()], LYING[None], np.array([0.2]), neighbour, SIZE) == []


def test_a_box_over_someone_tracked_is_theirs() -> None:
    seen = np.array([[400.0, 150.0, 500.0, 240.0]])  # someone tracked right there
    assert match_lost([lost()], LYING[None], np.array([0.2]), seen, SIZE) == []


def test_a_person_who_walked_out_at_the_edge_is_not_looked_for_in_a_fall_zone() -> None:
    at_edge = np.array([580.0, 76.0, 640.0, 200.0])
    person = lost(last=at_edge, predicted=at_edge, upright=at_edge)
    down_there = np.array([[530.0, 150.0, 630.0, 220.0]])
    assert match_lost([person], down_there, np.array([0.2]), NOBODY, SIZE) == []


def test_where_they_lay_beats_the_fall_zone_and_each_box_serves_one_person() -> None:
    lying_still = lost(last=LYING, predicted=LYING)
    beside = LYING + np.array([10.0, 0.0, 10.0, 0.0])  # overlaps where they lay
    other = np.array([360.0, 185.0, 480.0, 236.0])  # in the fall zone, over the feet, more confident
    pairs = match_lost([lying_still], np.stack([other, beside]), np.array([0.5, 0.05]), NOBODY, SIZE)
    assert pairs == [(0, 1)]
    two = [lost(), lost()]
    assert len(match_lost(two, LYING[None], np.array([0.1]), NOBODY, SIZE)) == 1


def _frame(box: np.ndarray, conf: float) -> Detections:
    return Detections(box[None].astype(np.float32), np.array([conf], np.float32), ("person",))


def _fall(faint: bool) -> tuple[set, list]:
    """A person standing at 5 fps, then seen only by faint, wide boxes on the floor."""
    tracker = MultiClassTracker(fps=5)
    standing, down = set(), []
    t = 0.0
    for _ in range(6):
        standing |= {b.key for b in tracker.update(_frame(STANDING, 0.8), IMAGE, t)}
        t += 0.2
    tracker.update(Detections.empty(), IMAGE, t)  # missed while falling
    t += 0.2
    for k in range(6):
        box = LYING + np.array([2.0 * k, 0, 2.0 * k, 0])
        weak = Detections.empty()
        frame = replace(weak, faint=_frame(box, 0.06)) if faint else weak
        down += tracker.update(frame, IMAGE, t)
        t += 0.2
    return standing, down


def test_the_tracker_follows_a_fall_seen_only_by_faint_boxes() -> None:
    standing, down = _fall(faint=True)
    assert len(standing) == 1
    assert len(down) == 6 and {b.key for b in down} == standing
    assert all(b.label == "person" and b.confidence < 0.1 and b.appearance is None for b in down)


def test_without_faint_boxes_the_fallen_person_is_lost() -> None:
    _, down = _fall(faint=False)
    assert down == []


def test_faint_boxes_start_no_track() -> None:
    tracker = MultiClassTracker(fps=5)
    out = []
    for k in range(8):
        out += tracker.update(replace(Detections.empty(), faint=_frame(LYING, 0.08)), IMAGE, k * 0.2)
    assert out == []
