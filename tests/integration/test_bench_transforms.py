"""bench/transforms.py on real footage: the edited clips behind the behaviour scenarios show their labels."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from camsight.media.writer import read_frames
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
import transforms

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cars(car_detection_clip: Path) -> tuple[Path, list[np.ndarray]]:
    frames, _ = read_frames(car_detection_clip)
    return car_detection_clip, frames


def close(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute grey-level difference (re-encoding changes a few levels, a moving car many)."""
    return float(cv2.absdiff(a, b).mean())


def test_a_held_frame_stops_everything_at_2x(cars, tmp_path: Path) -> None:
    path, source = cars
    clip, order = transforms.stopping_clip(path, tmp_path / "stop.mp4", {84: 1.0}, factor=2)
    out, fps = read_frames(clip)
    assert fps == pytest.approx(12.5) and len(out) == len(order)
    held = [k for k, i in enumerate(order) if i == 84]
    assert len(held) == 1 + round(12.5)  # shown once, then held for 1 s
    assert order[: held[0]] == list(range(0, 84, 2))  # every second frame before it: 2x fast
    for k in held:
        assert close(out[k], source[84]) < 3.0
    # Before the hold the car moves between output frames; during it nothing does.
    assert close(out[held[0] - 1], out[held[0]]) > 2 * close(out[held[1]], out[held[-1]])
    with pytest.raises(ValueError, match="dropped by the 2x speed-up"):
        transforms.stopping_clip(path, tmp_path / "odd.mp4", {85: 1.0}, factor=2)


def test_running_and_mirrored_clips(cars, tmp_path: Path) -> None:
    path, source = cars
    clip, order = transforms.running_clip(path, tmp_path / "fast.mp4", 60, 89, factor=3)
    out, _ = read_frames(clip)
    assert order == [*range(60), *range(60, 90, 3), *range(90, len(source))] and len(out) == len(order)
    assert close(out[61], source[63]) < 3.0
    flipped = transforms.edit(path, tmp_path / "flip.mp4", [70, 71], transforms.upside_down)
    first, _ = read_frames(flipped)
    assert close(first[0], source[70][::-1]) < 3.0 and close(first[0], source[70]) > 3.0
