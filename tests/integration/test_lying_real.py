"""A person who falls and lies on the floor stays tracked and is found by "lying" (UR Fall fall-01:
upright to frame 82, falling 83-112, lying 113-160; YOLOX sees the lying person only weakly),
at the native rate and at the default one (5 fps), where the tracker's second look at where
the person was lost keeps them (tracking.second_look); nobody walking in PETS09 is found lying."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import db_query, run_cli

from camsight.sources.video_file import VideoFile
from camsight.vision.detections import DEFAULT_CONFIDENCE, FAINT_CONFIDENCE
from camsight.vision.yolox import YoloxDetector

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LYING_FROM = 113
LYING_QUERY = "person lying on the ground"


@pytest.fixture(scope="module")
def fall(shared_data: Path, yolox_model: Path, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("lying") / "data"
    clip = shared_data / "urfall" / "fall-01-cam0.mp4"
    proc = run_cli(
        "index", clip, "--fps", "native", "--detector", "yolox", "--model", yolox_model,
        "--recorded-at", "2026-11-20T10:00:00", "--data", data,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return data


@pytest.fixture(scope="module")
def fall_default_rate(shared_data: Path, yolox_model: Path, tmp_path_factory) -> Path:
    """The fall clip indexed as a user would, at the default analysis rate (5 fps)."""
    data = tmp_path_factory.mktemp("lying5") / "data"
    clip = shared_data / "urfall" / "fall-01-cam0.mp4"
    proc = run_cli(
        "index", clip, "--detector", "yolox", "--model", yolox_model,
        "--recorded-at", "2026-11-20T10:00:00", "--data", data,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return data


def _one_track_from_standing_to_lying(data: Path) -> None:
    rows = db_query(
        data, "select first_frame, last_frame from tracks where label = 'person' order by first_frame"
    )
    assert rows
    first, last = rows[0]
    # One track from standing to lying: it starts upright and goes well into the lying frames.
    assert first < 83 and last >= LYING_FROM + 25, rows


def _found_lying(data: Path, query: str = LYING_QUERY) -> None:
    proc = run_cli("search", query, "--json", "--data", data)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert hits and hits[0]["match"] == "full"
    why = hits[0]["explanation"][0]
    assert why["matched"] and "lying" in why["term"]


def test_the_track_goes_on_through_the_fall_and_while_lying(fall: Path) -> None:
    _one_track_from_standing_to_lying(fall)


def test_lying_on_the_ground_finds_them(fall: Path) -> None:
    _found_lying(fall)


def test_at_the_default_rate_the_track_goes_on_while_they_lie(fall_default_rate: Path) -> None:
    _one_track_from_standing_to_lying(fall_default_rate)
    # Boxes while lying, most of them below the detector's floor: the second look found them.
    lying = db_query(
        fall_default_rate,
        "select confidence from observations where detected and frame >= ? order by frame",
        (LYING_FROM,),
    )
    assert len(lying) >= 5 and sum(c < DEFAULT_CONFIDENCE for (c,) in lying) >= 3, lying


def test_at_the_default_rate_lying_finds_them(fall_default_rate: Path) -> None:
    _found_lying(fall_default_rate)
    _found_lying(fall_default_rate, "lying")


def test_the_detector_keeps_a_faint_box_on_the_fallen_person(shared_data: Path, yolox_model: Path) -> None:
    """Frame 103 (falling): no person box reaches the floor there, a faint one does."""
    video = VideoFile(shared_data / "urfall" / "fall-01-cam0.mp4")
    image = next(f.image for f in video.frames(None) if f.index == 103)
    found = YoloxDetector(yolox_model).detect(image)
    person = np.array([427.0, 108.0, 507.0, 236.0])  # where the person is, half-way down

    def near(xyxy: np.ndarray) -> np.ndarray:
        inter = np.clip(np.minimum(xyxy[:, 2:], person[2:]) - np.maximum(xyxy[:, :2], person[:2]), 0, None)
        return inter.prod(axis=1) / ((person[2:] - person[:2]).prod()) > 0.7

    assert not near(found.of("person").xyxy).any()
    assert found.faint is not None and near(found.faint.xyxy).any()
    assert set(found.faint.labels) == {"person"}
    assert (found.faint.confidence >= FAINT_CONFIDENCE).all() and (
        found.faint.confidence < DEFAULT_CONFIDENCE
    ).all()


def test_nobody_walking_in_pets09_is_found_lying(
    vtest_short: Path, yolox_model: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    proc = run_cli("index", vtest_short, "--detector", "yolox", "--model", yolox_model, "--data", data)
    assert proc.returncode == 0, proc.stderr
    assert db_query(data, "select count(*) from tracks where label = 'person'")[0][0] >= 3
    proc = run_cli("search", LYING_QUERY, "--json", "--data", data)
    assert proc.returncode == 0, proc.stderr
    assert [h for h in json.loads(proc.stdout) if h["match"] == "full"] == []
