"""MovingObjects on real footage: cars seen from above, pedestrians on a square."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from camsight.sources.video_file import VideoFile
from camsight.vision.moving_objects import MovingObjects, MovingObjectSettings

pytestmark = pytest.mark.integration

CLIP_FPS = 12.5  # car-detection.mp4's frame rate: windows below are in its frame numbers
#: Frames (1-based, inclusive) in which cars cross car-detection.mp4.
CAR_WINDOWS = {"first": (57, 101), "two cars": (187, 231), "last": (319, 345)}
#: Cars are partly in view a little before and after those windows.
EDGE = 1.2


def seconds(frame: int) -> float:
    return (frame - 1) / CLIP_FPS


def blobs_of(
    path: Path, settings: MovingObjectSettings, until: float | None = None
) -> tuple[list[tuple], float]:
    """``(t, detections)`` for every frame analysed at 5 fps, and the mean cost of ``update``."""
    finder = MovingObjects(settings)
    out = []
    spent = 0.0
    with VideoFile(path) as video:
        for frame in video.frames(fps=5.0):
            if until is not None and frame.t > until:
                break
            gray = frame.gray
            start = time.perf_counter()
            found = finder.update(gray, frame.t)
            spent += time.perf_counter() - start
            out.append((frame.t, found, gray.shape))
    return out, spent / len(out)


def test_each_car_crossing_the_road_gives_blobs(shared_data, capsys):
    results, cost = blobs_of(shared_data / "intel" / "car-detection.mp4", MovingObjectSettings("car"))
    windows = {name: (seconds(a), seconds(b)) for name, (a, b) in CAR_WINDOWS.items()}

    per_window: dict[str, int] = {}
    analysed: dict[str, int] = {}
    for name, (start, end) in windows.items():
        inside = [found for t, found, _ in results if start <= t <= end]
        per_window[name] = sum(1 for found in inside if len(found))
        analysed[name] = len(inside)
        # Most analysed frames of each crossing have a blob. (For about a second of
        # the second window the two cars touch and make one blob too big for a car.)
        assert per_window[name] >= 0.6 * len(inside), (name, per_window[name], len(inside))
        for found in inside:
            assert set(found.labels) <= {"car"}
            assert (found.confidence == 0.5).all()

    # Two cars side by side in the second window: one going up in the middle, one going down on the left.
    w = results[0][2][1]
    start, end = windows["two cars"]
    both = 0
    for t, found, _ in results:
        if start <= t <= end:
            centres = (found.xyxy[:, 0] + found.xyxy[:, 2]) / 2 / w
            middle = ((centres > 0.4) & (centres < 0.65)).any()
            left = ((centres > 0.1) & (centres < 0.35)).any()
            both += bool(middle and left)
    assert both >= 5, both

    def near(t: float, edge: float) -> bool:
        return any(a - edge <= t <= b + edge for a, b in windows.values())

    outside = [round(t, 1) for t, found, _ in results if len(found) and not near(t, 0.0)]
    strays = [round(t, 1) for t, found, _ in results if len(found) and not near(t, EDGE)]
    assert len(strays) <= 3, strays
    with capsys.disabled():
        print(
            f"\ncars: frames with blobs per window {per_window} of {analysed}, both cars {both} frames; "
            f"{len(outside)} frames with blobs outside the windows {outside} "
            f"({len(strays)} beyond {EDGE} s of them); {1000 * cost:.2f} ms/frame"
        )


def test_walking_people_give_blobs(shared_data, capsys):
    path = shared_data / "pets09" / "vtest.avi"
    if not path.exists():
        pytest.skip(f"shared test data not found: {path}")
    results, cost = blobs_of(path, MovingObjectSettings("person"), until=30.0)
    h = results[0][2][0]
    warm = [found for t, found, _ in results if t >= 1.0]
    with_blobs = [found for found in warm if len(found)]
    # People walk across the square the whole time.
    assert len(with_blobs) >= 0.8 * len(warm), (len(with_blobs), len(warm))
    heights = [float(b[3] - b[1]) / h for found in with_blobs for b in found.xyxy]
    assert sorted(heights)[len(heights) // 2] < 0.5  # blobs of people, not of half the picture
    with capsys.disabled():
        print(
            f"\nvtest: blobs in {len(with_blobs)}/{len(warm)} frames, "
            f"{sum(len(f) for f in with_blobs)} boxes; {1000 * cost:.2f} ms/frame"
        )
