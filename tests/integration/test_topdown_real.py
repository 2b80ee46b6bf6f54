"""Cars seen from straight above (issue 17): line crossings and wrong-way on intel/car-detection.mp4.

The camera config is bench/scenarios/topdown.yaml: ``moving_objects: {label: car}``
(the detector barely sees cars from above), a line across the road and the two
lanes with their directions. By inspection the clip has four cars, each
crossing the middle of the picture once: two down the left lane ("in"), two up
the right lane ("out"). Played backwards every car drives against its lane.

Before, 2 crossings were counted for the 4 cars: the line was judged at the
bottom edge of the box, which from above is the car's rear or the frame's edge
while it drives in, and the red car was a "suitcase" the line rule never saw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from camsight.media.writer import reversed_copy
from tests.conftest import REPO_ROOT, YOLOX_ARGS, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = REPO_ROOT / "bench" / "scenarios" / "topdown.yaml"
FPS = 12.5
#: Each car's frames (1-based, by inspection) and its direction over the road line.
CARS = [(57, 101, "out"), (187, 231, "in"), (187, 231, "out"), (319, 345, "in")]


def index_events(clip: Path, data: Path) -> list[dict]:
    proc = run_cli(
        "index", clip, "--camera", "car-detection", "--config", SCENARIO, "--data", data, *YOLOX_ARGS
    )
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("events", "--json", "--data", data, "--limit", "1000")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def clip(car_detection_clip: Path) -> Path:
    return car_detection_clip


def test_each_car_crosses_the_road_line_once_with_its_direction(clip: Path, tmp_path: Path) -> None:
    events = index_events(clip, tmp_path / "data")
    crossings = sorted(
        (round(e["start_t"] * FPS + 1), e["details"]["direction"])
        for e in events
        if e["type"] == "line_crossing"
    )
    assert len(crossings) == len(CARS), crossings
    left = list(CARS)
    for frame, direction in crossings:
        # Each crossing is one car's, of that car's direction, while it is in view (give or take 1 s).
        car = next((c for c in left if c[2] == direction and c[0] - FPS <= frame <= c[1] + FPS), None)
        assert car is not None, (frame, direction, crossings)
        left.remove(car)
    # Played forwards nobody drives against a lane.
    assert [e for e in events if e["type"] == "wrong_way"] == []


def test_the_clip_played_backwards_is_one_wrong_way_event_per_car(clip: Path, tmp_path: Path) -> None:
    backwards = reversed_copy(clip, tmp_path / "car-detection-reversed.mp4")
    events = index_events(backwards, tmp_path / "data")
    wrong = [e for e in events if e["type"] == "wrong_way"]
    # Frames of the original clip each event is at (the reversed copy runs backwards).
    frames = sorted(377 - round(e["start_t"] * FPS) for e in wrong)
    assert len(wrong) == len(CARS), [e["summary"] for e in wrong]
    assert len({tuple(e["track_ids"]) for e in wrong}) == len(wrong)  # one each, no car twice
    for first, last, _ in CARS:
        assert any(first - FPS <= f <= last + FPS for f in frames), (frames, first, last)
    for e in wrong:
        # The detector calls the red car a bus from above: a vehicle class, and it drives.
        assert e["summary"].split(" ", 1)[1].startswith("driving the wrong way"), e["summary"]
        assert e["summary"].split(" ", 1)[0] in ("car", "bus", "truck"), e["summary"]
