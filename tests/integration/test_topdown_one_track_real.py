"""Cars seen from straight above (issue 17): each car one track through the frame.

intel/car-detection.mp4 indexed as bench/rules_eval.py does (YOLOX-nano, the default 5 fps,
bench/scenarios/topdown.yaml and cars.yaml: ``moving_objects: {label: car}``). By inspection
four cars cross the picture: one up the right lane (frames 57-101), two side by side (187-231:
one down the left lane, one up the right), one down the left lane (319-345).

Before, those four cars made 6 vehicle tracks: the two that pass side by side touch, and
the background model saw one blob too big for a car, so the left car was lost and came
back as a new track (plus a track on the merged blob); the clip turned upside down (the
detector blind to its cars) found 1 of the 4 cars driving against their lane, its tracks
broken where cars drive in and out of the picture. And a car followed until it had driven
out was held at the edge by the motion gate once nothing moved: a car stopped dead there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import pytest

from camsight.config import load_config
from camsight.media.writer import read_frames, write_video
from camsight.pipeline.indexer import Indexer, IndexSettings
from camsight.store.db import Store, open_store
from camsight.store.models import EventRow, LineCrossingRow, ObservationRow, Track
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIOS = REPO_ROOT / "bench" / "scenarios"
FPS = 12.5
#: Each car's frames (1-based, by inspection) and its direction over the road line.
CARS = [(57, 101, "out"), (187, 231, "in"), (187, 231, "out"), (319, 345, "in")]
VEHICLES = ("car", "bus", "truck")


@pytest.fixture(scope="module")
def clip(car_detection_clip: Path) -> Path:
    return car_detection_clip


def index(clip: Path, scenario: str, data: Path, yolox: Path) -> Store:
    store = open_store(data)
    settings = IndexSettings(detector="yolox", model=str(yolox), attributes=False)
    config = load_config(SCENARIOS / f"{scenario}.yaml")
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    Indexer(store, settings, config=config).index(clip, "car-detection", recorded_at=start, force=True)
    return store


def frame(t: float) -> int:
    return round(t * FPS) + 1


def test_each_car_is_one_track_through_the_frame(clip: Path, tmp_path: Path, yolox_model: Path) -> None:
    store = index(clip, "topdown", tmp_path / "data", yolox_model)
    with store.session() as session:
        tracks = {
            t.local_id: (frame(t.start_t), frame(t.end_t))
            for t in session.query(Track).filter(Track.label.in_(VEHICLES))
        }
        # Whether each track's last box is one the detector or the blobs saw, not one held over
        # frames the motion gate skipped.
        last_seen = {
            t.local_id: session.query(ObservationRow.detected)
            .filter(ObservationRow.track_id == t.id)
            .order_by(ObservationRow.t.desc())
            .limit(1)
            .scalar()
            for t in session.query(Track).filter(Track.label.in_(VEHICLES))
        }
        crossings = sorted(
            (frame(t), d, tid)
            for t, d, tid in session.query(
                LineCrossingRow.t, LineCrossingRow.direction, LineCrossingRow.track_local_id
            )
        )
    store.close()
    assert len(tracks) == len(CARS), tracks
    assert len(crossings) == len(CARS), crossings
    owners = set()
    for first, last, direction in CARS:
        # The car's crossing: its direction, while it is in view (give or take 1 s).
        hit = [c for c in crossings if c[1] == direction and first - FPS <= c[0] <= last + FPS]
        hit = [c for c in hit if c[2] not in owners]
        assert hit, (first, last, direction, crossings)
        owner = hit[0][2]
        owners.add(owner)
        # The track that crossed follows the car through the picture, not a piece of it.
        start, end = tracks[owner]
        covered = min(end, last) - max(start, first)
        assert covered >= 0.8 * (last - first), (first, last, tracks[owner])
    assert len(owners) == len(CARS)
    # A car that drove out of the picture is gone: when nothing moves after it, its last box
    # is not held at the edge (a car held there would seem to have stopped dead).
    assert all(last_seen.values()), last_seen


def test_upside_down_every_car_drives_the_wrong_way_once(
    clip: Path, tmp_path: Path, yolox_model: Path
) -> None:
    # Top and bottom swapped: every car drives against its lane; the detector sees
    # nearly none of them, so this is the moving blobs' tracks alone.
    frames, fps = read_frames(clip)
    flipped = tmp_path / "car-detection-upside-down.mp4"
    write_video(flipped, (cv2.flip(f, 0) for f in frames), fps)
    store = index(flipped, "cars", tmp_path / "data", yolox_model)
    with store.session() as session:
        wrong = [(frame(e.start_t), tuple(e.track_local_ids)) for e in session.query(EventRow)]
        vehicles = session.query(Track).filter(Track.label.in_(VEHICLES)).count()
    store.close()
    assert len(wrong) == len(CARS), wrong
    assert len({ids for _, ids in wrong}) == len(CARS), wrong  # one each, no car twice
    assert vehicles == len(CARS)
    for first, last, _ in CARS:
        assert any(first - FPS <= f <= last + FPS for f, _ in wrong), (first, last, wrong)
