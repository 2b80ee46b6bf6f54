"""A person who falls and lies on the floor stays tracked and is found by "lying" (UR Fall fall-01:
upright to frame 82, falling 83-112, lying 113-160; YOLOX sees the lying person only weakly)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import db_query, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LYING_FROM = 113


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


def test_the_track_goes_on_through_the_fall_and_while_lying(fall: Path) -> None:
    rows = db_query(
        fall, "select first_frame, last_frame from tracks where label = 'person' order by first_frame"
    )
    assert rows
    first, last = rows[0]
    # One track from standing to lying: it starts upright and goes well into the lying frames.
    assert first < 83 and last >= LYING_FROM + 25, rows


def test_lying_on_the_ground_finds_them(fall: Path) -> None:
    proc = run_cli("search", "person lying on the ground", "--json", "--data", fall)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert hits and hits[0]["match"] == "full"
    why = hits[0]["explanation"][0]
    assert why["matched"] and "lying" in why["term"]
