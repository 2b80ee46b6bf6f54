"""TamperingDetector on real footage from ../shared/data, tampered with in the test.

From second 8 on, each clip gets a black patch over 60% of the picture, a heavy
Gaussian blur (sigma 1% of the width), or a shift of 10% of the width (the
camera turned; edges replicated); or its timestamps jump by more than
``lost_seconds``. Frames go to the detector at 5 fps, as the indexer sends
them. Each tampered clip must raise exactly one event of the right kind,
starting when the change began; the untouched clips, with people, cyclists
and cars moving, an exposure jump and a slowly drifting camera, none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from camsight.analytics.geometry import Geometry
from camsight.analytics.rules.base import EventChange, FrameContext
from camsight.analytics.rules.tampering import TamperingDetector
from camsight.config import CameraConfig, TamperingRule
from camsight.sources.frame import Frame
from camsight.sources.video_file import VideoFile
from tests.tampered import blocked, blurred, shifted

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIPS = [
    "pets09/vtest.avi",
    "intel/one-by-one-person-detection.mp4",
    "intel/car-detection.mp4",
    "intel/person-bicycle-car-detection.mp4",
]
#: When the tampering starts (s): after the 4 s the reference takes to learn, plus margin.
CHANGE = 8.0
FPS = 5.0
#: Tampered clips are cut here: enough to see that one event holds, and it keeps the test short.
TAMPERED_SECONDS = 45.0
MIN_SECONDS = 2.0
LOST_SECONDS = 10.0


TAMPERING: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "blocked": (blocked, "blocked"),
    "blurred": (blurred, "defocus"),
    "shifted": (shifted, "moved"),
}


def run_clip(
    path: Path,
    change: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    seconds: float | None = None,
    gap: tuple[float, float] | None = None,
) -> tuple[list[EventChange], float]:
    """Feed ``path`` at 5 fps through a tampering rule; return its event changes and the last frame's time.

    ``change`` alters the frames from CHANGE on; frames inside ``gap`` are dropped (the video stalls).
    """
    config = TamperingRule(type="tampering", min_seconds=MIN_SECONDS, lost_seconds=LOST_SECONDS)
    changes: list[EventChange] = []
    last = 0.0
    with VideoFile(path) as video:
        size = (video.info.width, video.info.height)
        rule = TamperingDetector(config, "cam", Geometry.build("cam", CameraConfig(), size), None, str(path))
        for frame in video.frames(FPS):
            if seconds is not None and frame.t > seconds:
                break
            if gap is not None and gap[0] <= frame.t < gap[1]:
                continue
            if change is not None and frame.t >= CHANGE:
                gray = change(frame.gray)
                frame = Frame(frame.index, frame.t, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
            changes += rule.update(FrameContext(t=frame.t, at=None, frame=frame, objects=[]), {})
            last = frame.t
        changes += rule.finish(last, None)
    return changes, last


def describe(changes: list[EventChange]) -> list[tuple[str, str, float, float | None]]:
    return [(c.kind, c.event.details["kind"], round(c.event.start_t, 2), c.event.end_t) for c in changes]


@pytest.mark.parametrize("clip", CLIPS)
def test_untouched_footage_raises_nothing(shared_data: Path, clip: str):
    changes, _ = run_clip(shared_data / clip)
    assert changes == [], describe(changes)


@pytest.mark.parametrize("tampering", list(TAMPERING))
@pytest.mark.parametrize("clip", CLIPS)
def test_tampering_raises_one_event_of_its_kind(shared_data: Path, clip: str, tampering: str):
    change, kind = TAMPERING[tampering]
    changes, last = run_clip(shared_data / clip, change, seconds=TAMPERED_SECONDS)
    starts = [c.event for c in changes if c.kind == "start"]
    ends = [c.event for c in changes if c.kind == "end"]
    assert len(starts) == 1 and len(ends) == 1, describe(changes)
    event = starts[0]
    assert event is ends[0]
    assert event.type == "tampering"
    assert event.details["kind"] == kind, describe(changes)
    # It starts when the tampering began and is reported once it lasted min_seconds.
    assert CHANGE - 0.5 <= event.start_t <= CHANGE + 1.0
    assert event.details["fired_t"] <= CHANGE + MIN_SECONDS + 1.0
    # It stays open while the tampering lasts (to the end of the clip).
    assert event.end_t is not None and event.end_t >= last - 1.0
    if kind == "moved":
        assert event.details["shift_x"] == pytest.approx(0.10, abs=0.02)


@pytest.mark.parametrize("clip", CLIPS)
def test_timestamp_gap_is_video_lost(shared_data: Path, clip: str):
    gap = (CHANGE, CHANGE + LOST_SECONDS + 2.0)
    changes, _ = run_clip(shared_data / clip, seconds=TAMPERED_SECONDS, gap=gap)
    assert [c.kind for c in changes] == ["start", "end"], describe(changes)
    event = changes[0].event
    assert event.details["kind"] == "video_lost"
    assert CHANGE - 0.5 <= event.start_t < CHANGE
    assert event.end_t is not None and gap[1] <= event.end_t <= gap[1] + 0.5
