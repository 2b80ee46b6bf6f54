"""Vehicle type and colour for a camera that looks straight down (issue 13).

intel/car-detection.mp4, indexed as a user would: ``camsight index --config`` with the camera's
``moving_objects: {label: car}`` (from above, YOLOX-nano calls these cars a bus or nothing at
all). By inspection: a white car up the right lane (frames 57-101), a red car up the right lane
and a silver-green one down the left lane side by side (187-231), a white car down the left lane
(319-345).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RED = (187, 231)
WHITE = [(57, 101), (319, 345)]


@pytest.fixture(scope="module")
def road(car_detection_clip: Path, yolox_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("topdown-search")
    config = root / "camsight.yaml"
    config.write_text("cameras:\n  road:\n    moving_objects: {label: car, max_area: 0.3}\n")
    data = root / "data"
    proc = run_cli(
        "index", car_detection_clip, "--camera", "road", "--config", config, "--detector", "yolox",
        "--model", yolox_model, "--data", data,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return data


def search(data: Path, text: str) -> list[dict]:
    proc = run_cli("search", text, "--json", "--data", data)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def during(hit: dict, span: tuple[int, int]) -> bool:
    """Whether the hit's best frame is inside a car's frames (12.5 fps, 1-based)."""
    return span[0] <= hit["frame"] <= span[1]


def test_the_red_car_is_found_by_type_and_colour(road: Path) -> None:
    full = [h for h in search(road, "red car") if h["match"] == "full"]
    assert len(full) == 1 and during(full[0], RED), full
    why = full[0]["explanation"][0]
    assert why["region"] == "vehicle body" and "red" in why["detail"]


def test_white_cars_are_not_the_red_one(road: Path) -> None:
    red = next(h["track_id"] for h in search(road, "red car") if h["match"] == "full")
    full = [h for h in search(road, "white car") if h["match"] == "full"]
    assert all(any(during(h, span) for h in full) for span in WHITE), full
    assert red not in {h["track_id"] for h in full}


def test_every_car_is_a_car_not_a_bus(road: Path) -> None:
    assert len(search(road, "car")) == 4
    assert search(road, "bus") == []
