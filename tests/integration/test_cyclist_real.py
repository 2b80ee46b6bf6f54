"""A person walking a bicycle across a car park seen from above is tracked, with the bicycle, and
"cyclist" or "person with a bicycle" finds the person, one card (Intel person-bicycle-car clip:
they cross the top of the picture at 10-14 s; YOLOX-nano scores the small person 0.1-0.65 and
the bicycle 0.1-0.5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import db_query, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def car_park(shared_data: Path, yolox_model: Path, tmp_path_factory) -> Path:
    clip = shared_data / "intel" / "person-bicycle-car-detection.mp4"
    if not clip.is_file():
        pytest.skip(f"shared test data not found: {clip}")
    data = tmp_path_factory.mktemp("cyclist") / "data"
    # The default analysis rate (5 fps) and motion gate: as a user indexes.
    proc = run_cli("index", clip, "--detector", "yolox", "--model", yolox_model, "--data", data)
    assert proc.returncode == 0, proc.stderr
    return data


def test_the_person_and_their_bicycle_are_tracked_together(car_park: Path) -> None:
    rows = db_query(car_park, "select label, start_t, end_t, num_observations from tracks where start_t < 20")
    people = [r for r in rows if r[0] == "person" and r[2] > 10 and r[3] >= 5]
    bikes = [r for r in rows if r[0] == "bicycle" and r[2] > 10 and r[3] >= 5]
    assert people and bikes, rows
    (_, p0, p1, _), (_, b0, b1, _) = people[0], bikes[0]
    assert min(p1, b1) - max(p0, b0) >= 2.0  # seen together for seconds, not a frame


@pytest.mark.parametrize("text", ["cyclist", "person with a bicycle", "man pushing a bike"])
def test_cyclist_finds_them(car_park: Path, text: str) -> None:
    # A person with a bicycle is one card, the person's (the bicycle is theirs: carried:bicycle);
    # the pedestrians who cross later (25-31 s) are no match, not "person or bicycle".
    proc = run_cli("search", text, "--json", "--data", car_park)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    full = [h for h in hits if h["match"] == "full"]
    assert len(full) == 1 and full[0]["label"] == "person", hits
    assert full[0]["start"] < 14 and full[0]["end"] > 11, hits
    assert "bicycle" in full[0]["explanation"][0]["term"], hits
    walkers = run_cli("search", "person", "--json", "--data", car_park)
    later = [h for h in json.loads(walkers.stdout) if h["start"] > 20]
    assert later, "the pedestrians are found as people"  # so their absence above means something


def test_the_bicycle_is_linked_to_its_rider(car_park: Path) -> None:
    rows = db_query(
        car_park,
        "select b.carrier_local_id, p.local_id, p.carried from tracks b join tracks p "
        "on p.source_id = b.source_id and p.local_id = b.carrier_local_id where b.label = 'bicycle'",
    )
    assert rows and "bicycle" in json.loads(rows[0][2]), rows
