"""Track confirmation is a duration: 3 detections at 10 fps, still 2 at a few frames a second."""

from __future__ import annotations

import numpy as np
import pytest

from camsight.config import Config, parse_config
from camsight.pipeline.indexer import IndexSettings
from camsight.tracking.tracker import MultiClassTracker, TrackedBox, TrackerSettings
from camsight.vision.detections import Detections

IMAGE = np.full((360, 640, 3), 90, np.uint8)


def _person(i: int) -> Detections:
    """A confidently seen walker, a few pixels further in each analysed frame."""
    x = 100.0 + 4 * i
    return Detections(np.array([[x, 100, x + 40, 200]], np.float32), np.array([0.9], np.float32), ("person",))


def _frames(fps: float, seen: int, settings: TrackerSettings | None = None) -> list[list[TrackedBox]]:
    """What the tracker reports for a person seen in ``seen`` analysed frames in a row, then gone."""
    tracker = MultiClassTracker(fps=fps, settings=settings)
    tracker.update(Detections.empty(), IMAGE, -1 / fps)  # the video's first frame confirms at once
    out = [tracker.update(_person(i), IMAGE, i / fps) for i in range(seen)]
    return out + [tracker.update(Detections.empty(), IMAGE, (seen + k) / fps) for k in range(3)]


@pytest.mark.parametrize(("fps", "hits"), [(10, 3), (5, 2), (2, 2), (25, 4)])
def test_a_track_is_confirmed_after_a_quarter_second_of_detections(fps: float, hits: int) -> None:
    assert TrackerSettings().confirmation_hits(fps) == hits
    frames = _frames(fps, seen=hits + 3)
    first = next(i for i, frame in enumerate(frames) if frame)
    assert first == hits - 1
    # The boxes withheld until then are reported with it: the track loses nothing.
    (box,) = frames[first]
    assert [t for t, _ in box.earlier] == pytest.approx([i / fps for i in range(first)])
    assert sum(len(frame) for frame in frames) + len(box.earlier) == hits + 3


def test_two_detections_in_a_row_are_a_track_at_five_fps_but_not_at_ten() -> None:
    # Two frames at 10 fps are 0.2 s: a flicker in a crowd. At 5 fps they are 0.4 s of someone
    # passing by, who must not be lost.
    assert not any(_frames(10, seen=2))
    assert sum(len(frame) for frame in _frames(5, seen=2)) == 1


def test_min_hits_stays_the_floor_and_zero_seconds_leaves_it_alone() -> None:
    assert TrackerSettings(min_hits=4).confirmation_hits(10) == 4
    assert TrackerSettings(confirm_seconds=0).confirmation_hits(10) == 2
    assert TrackerSettings(confirm_seconds=0.3).confirmation_hits(10) == 3  # not 4 by rounding
    first = next(i for i, f in enumerate(_frames(10, 6, TrackerSettings(confirm_seconds=0))) if f)
    assert first == 1


def test_the_config_sets_it_and_it_changes_the_index_key() -> None:
    settings = IndexSettings.from_config(parse_config("tracking:\n  confirm_seconds: 0.5\n"))
    assert settings.tracker.confirm_seconds == 0.5
    assert settings.key() != IndexSettings.from_config(Config()).key()
    assert IndexSettings.from_config(Config()).tracker.confirm_seconds == TrackerSettings().confirm_seconds
