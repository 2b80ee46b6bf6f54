"""Unusual activity on real footage: PETS09 vtest.avi (80 s of pedestrians on a campus).

The clip is indexed with the real indexer (YOLOX, 5 fps); its stored person
tracks are the camera's history. In this view people walk along a band
across the middle of the frame, a few cross the lawn; nobody walks on the
building at the top. Held-out real tracks (each judged by a model fitted on
the others) must be mostly ordinary at the default sensitivity, and
synthetic abnormal paths through the unused parts of the view must be
flagged, with a reason.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from camsight.analytics.geometry import Geometry
from camsight.analytics.rules.base import PastTrack
from camsight.analytics.rules.unusual import UnusualActivity
from camsight.analytics.trajectory_model import CameraModel, judgeable
from camsight.config import CameraConfig, UnusualActivityRule
from camsight.pipeline.indexer import Indexer, IndexSettings
from camsight.records.tracks import Kinematics, Observation, TrackRecord
from camsight.store.db import Store, open_store
from camsight.store.history import camera_history

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIZE = (768, 576)
DEFAULT_SENSITIVITY = UnusualActivityRule(type="unusual_activity").sensitivity


@pytest.fixture(scope="module")
def indexed(
    vtest: Path, yolox_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, int]]:
    """vtest.avi indexed as camera "campus" at 5 fps (about 10 s): the store and the source id."""
    store = open_store(tmp_path_factory.mktemp("unusual") / "data")
    settings = IndexSettings(fps=5, detector="yolox", model=str(yolox_model), attributes=False, pose=False)
    result = Indexer(store, settings).index(vtest, camera="campus")
    assert result.status == "complete"
    assert result.source_id is not None
    yield store, result.source_id
    store.close()


@pytest.fixture(scope="module")
def people(indexed: tuple[Store, int]) -> list[PastTrack]:
    store, _ = indexed
    return [p for p in camera_history(store, "campus") if p.label == "person"]


def path(*legs: tuple[float, float], seconds_per_width: float = 12.0, zigzag: float = 0.0) -> np.ndarray:
    """(n, 3) t, x, y at 5 fps through ``legs`` (normalised), at walking pace for this view.

    With ``zigzag`` the path swings that far to either side of its line, once a second.
    """
    pts = np.array(legs, np.float64)
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    seconds = arc[-1] * seconds_per_width
    t = np.arange(0.0, seconds, 0.2)
    s = t / seconds * arc[-1]
    xy = np.c_[np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])]
    if zigzag:
        d = (pts[-1] - pts[0]) / np.linalg.norm(pts[-1] - pts[0])
        swing = zigzag * (2 * np.abs(t % 2.0 - 1.0) - 1.0)
        xy += swing[:, None] * np.array([-d[1], d[0]])
    return np.c_[t, xy]


def test_history_has_the_tracks_with_normalised_feet_points(indexed: tuple[Store, int], people) -> None:
    store, source_id = indexed
    everything = camera_history(store, "campus")
    con = sqlite3.connect(store.root / "camsight.db")
    try:
        (stored,) = con.execute("SELECT count(*) FROM tracks").fetchone()
        first = con.execute(
            "SELECT o.t, o.x1, o.x2, o.y2 FROM observations o JOIN tracks k ON k.id = o.track_id "
            "ORDER BY k.start_t DESC, k.id DESC, o.frame"
        ).fetchall()
    finally:
        con.close()
    assert len(everything) == stored
    assert len(people) >= 20, "PETS09 S2L1 has a few dozen pedestrians"
    newest = everything[0]
    t, x1, x2, y2 = np.array(first[: len(newest.points)]).T
    assert np.allclose(newest.points[:, 0], t)
    assert np.allclose(newest.points[:, 1], (x1 + x2) / 2 / SIZE[0])
    assert np.allclose(newest.points[:, 2], y2 / SIZE[1])
    for p in everything:
        assert p.points.ndim == 2 and p.points.shape[1] == 3
        assert np.all(np.diff(p.points[:, 0]) > 0)
        assert p.points[:, 1:].min() >= -0.05 and p.points[:, 1:].max() <= 1.05
    # The footage being analysed is never its own history.
    assert camera_history(store, "campus", exclude_source_id=source_id) == []


def test_held_out_real_tracks_are_mostly_ordinary(people: list[PastTrack]) -> None:
    usable = [p for p in people if judgeable(p.points)]
    judged = flagged = 0
    for i, held_out in enumerate(usable):
        model = CameraModel.fit(usable[:i] + usable[i + 1 :], min_history=10, groups=("person",))
        verdict = model.judge("person", held_out.points, DEFAULT_SENSITIVITY)
        if verdict is not None:
            judged += 1
            flagged += verdict.unusual
    assert judged >= 15
    assert flagged / judged < 0.10, f"{flagged} of {judged} held-out real tracks flagged"


@pytest.mark.parametrize(
    ("name", "points", "words"),
    [
        ("straight up through the building", path((0.5, 0.3), (0.5, 0.02)), "top of the view"),
        ("zig-zag across the building", path((0.45, 0.08), (0.9, 0.08), zigzag=0.04), "top"),
        (
            "standing on the roof",
            np.c_[np.arange(0, 20, 0.2), np.full(100, 0.8), np.full(100, 0.05)],
            "stood",
        ),
    ],
)
def test_synthetic_abnormal_paths_are_flagged(people: list[PastTrack], name: str, points, words: str) -> None:
    model = CameraModel.fit(people, min_history=10, groups=("person",))
    verdict = model.judge("person", points, DEFAULT_SENSITIVITY)
    assert verdict is not None and verdict.unusual, (name, verdict)
    assert words in verdict.reason and "seldom" in verdict.reason, verdict.reason


def test_the_rule_learns_from_the_stored_history(indexed: tuple[Store, int]) -> None:
    store, _ = indexed
    config = UnusualActivityRule(type="unusual_activity", min_history=10, classes=["person"])
    rule = UnusualActivity(
        config, "campus", Geometry.build("campus", CameraConfig(), SIZE), None, "next-file"
    )
    rule.learn(camera_history(store, "campus"))
    assert rule.status.startswith("person: learned from ")
    w, h = SIZE
    up = path((0.5, 0.3), (0.5, 0.02))
    observations = [
        Observation(i + 1, float(t), (x * w - 12, y * h - 70, x * w + 12, y * h), 0.8)
        for i, (t, x, y) in enumerate(up)
    ]
    rec = TrackRecord(3, "person", observations, [], Kinematics(0, 0, 0, None, "stationary", 0, 0), 0.8)
    changes = rule.track_ended(rec, None, float(up[-1, 0]))
    assert [c.kind for c in changes] == ["start", "end"]
    assert changes[0].event.summary.startswith("person took an unusual path: moved up through the top")
    # A pedestrian on the usual band is left alone.
    band = path((0.05, 0.45), (0.95, 0.6))
    ordinary = [
        Observation(i + 1, float(t), (x * w - 12, y * h - 70, x * w + 12, y * h), 0.8)
        for i, (t, x, y) in enumerate(band)
    ]
    rec = TrackRecord(4, "person", ordinary, [], Kinematics(0, 0, 0, None, "stationary", 0, 0), 0.8)
    assert rule.track_ended(rec, None, float(band[-1, 0])) == []
