"""The unusual-activity model and rule on synthetic histories, and camera_history on a small store.

The synthetic camera: people walk across the frame in two bands, the upper
one in both directions, the lower one only rightwards (one way). Nobody
goes near the bottom-left corner or the top of the frame.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

import numpy as np
import pytest

from camsight.analytics.geometry import Geometry
from camsight.analytics.rules.base import PastTrack
from camsight.analytics.rules.unusual import UnusualActivity, feet_points
from camsight.analytics.schedule import Schedule
from camsight.analytics.trajectory_model import CameraModel, TrajectoryModel, quantile_for, tokenize
from camsight.config import CameraConfig, ScheduleConfig, UnusualActivityRule
from camsight.records.tracks import Kinematics, Observation, TrackRecord
from camsight.store.db import open_store
from camsight.store.history import camera_history
from camsight.store.models import Camera, ObservationRow, Source, Track

SIZE = (640, 480)


def walk(
    rng: np.random.Generator,
    *legs: tuple[float, float],
    speed: float = 0.1,
    fps: float = 5.0,
    jitter: float = 0.003,
) -> np.ndarray:
    """(n, 3) t, x, y: a walk through the given points at ``speed`` (frame widths a second)."""
    pts = np.array(legs, np.float64)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.r_[0.0, np.cumsum(seg)]
    n = max(int(arc[-1] / speed * fps), 2)
    s = np.linspace(0.0, arc[-1], n)
    xy = np.c_[np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])]
    xy += rng.normal(0.0, jitter, xy.shape)
    return np.c_[np.arange(n) / fps, xy]


def ordinary(rng: np.random.Generator) -> np.ndarray:
    speed = rng.uniform(0.07, 0.14)
    if rng.random() < 0.5:  # upper band, both ways
        a, b = (0.02, rng.uniform(0.36, 0.44)), (0.98, rng.uniform(0.36, 0.44))
        if rng.random() < 0.5:
            a, b = b, a
    else:  # lower band, rightwards only
        a, b = (0.02, rng.uniform(0.66, 0.74)), (0.98, rng.uniform(0.66, 0.74))
    return walk(rng, a, b, speed=speed)


def history(n: int = 150, seed: int = 0, label: str = "person") -> list[PastTrack]:
    rng = np.random.default_rng(seed)
    return [PastTrack(label, ordinary(rng), 0.8) for _ in range(n)]


@pytest.fixture(scope="module")
def model() -> TrajectoryModel:
    return TrajectoryModel.fit([p.points for p in history()], group="person")


# --------------------------------------------------------------------------- the model


def test_typical_tracks_are_not_flagged(model: TrajectoryModel) -> None:
    rng = np.random.default_rng(42)
    fresh = [ordinary(rng) for _ in range(200)]
    verdicts = [model.judge(p, sensitivity=0.5) for p in fresh]
    assert all(v is not None for v in verdicts)
    flagged = sum(v.unusual for v in verdicts if v is not None)
    # About q = 2.7% are expected at sensitivity 0.5; allow for sampling.
    assert flagged / len(fresh) <= 0.06


def test_a_diagonal_across_an_empty_corner_is_flagged(model: TrajectoryModel) -> None:
    rng = np.random.default_rng(1)
    corner = walk(rng, (0.02, 0.82), (0.3, 0.98))
    verdict = model.judge(corner, sensitivity=0.5)
    assert verdict is not None and verdict.unusual
    assert verdict.margin > 0
    assert "seldom seen" in verdict.reason and "bottom-left" in verdict.reason
    assert verdict.score > verdict.threshold or verdict.local_score > verdict.local_threshold


def test_against_the_flow_in_the_one_way_band_is_flagged(model: TrajectoryModel) -> None:
    rng = np.random.default_rng(2)
    wrong_way = walk(rng, (0.98, 0.70), (0.02, 0.70))
    verdict = model.judge(wrong_way, sensitivity=0.5)
    assert verdict is not None and verdict.unusual
    assert "against the usual direction" in verdict.reason
    assert "usually move right" in verdict.reason
    # The same walk in the two-way band is ordinary.
    both_ways = model.judge(walk(rng, (0.98, 0.40), (0.02, 0.40)), sensitivity=0.5)
    assert both_ways is not None and not both_ways.unusual


def test_a_short_detour_on_an_ordinary_path_is_flagged(model: TrajectoryModel) -> None:
    rng = np.random.default_rng(3)
    detour = walk(rng, (0.02, 0.40), (0.45, 0.40), (0.45, 0.05), (0.55, 0.05), (0.55, 0.40), (0.98, 0.40))
    verdict = model.judge(detour, sensitivity=0.5)
    assert verdict is not None and verdict.unusual
    assert verdict.local_score > verdict.local_threshold
    # The rarest stretch is the excursion to the top, and its time span lies inside the track.
    assert verdict.where[1] < 0.3
    assert detour[0, 0] <= verdict.segment[0] <= verdict.segment[1] <= detour[-1, 0]
    assert "top" in verdict.reason


def test_standing_still_where_nobody_stops(model: TrajectoryModel) -> None:
    t = np.arange(0, 20, 0.2)
    still = np.c_[t, np.full_like(t, 0.8), np.full_like(t, 0.1)]
    verdict = model.judge(still, sensitivity=0.5)
    assert verdict is not None and verdict.unusual
    assert verdict.reason.startswith("stood still in the top-right")


def test_slow_and_fast_walkers_on_one_path_score_alike(model: TrajectoryModel) -> None:
    rng = np.random.default_rng(4)
    slow = model.score(walk(rng, (0.02, 0.40), (0.98, 0.40), speed=0.05))
    fast = model.score(walk(rng, (0.02, 0.40), (0.98, 0.40), speed=0.25))
    assert slow is not None and fast is not None
    assert abs(slow.overall - fast.overall) < 0.5


def test_sensitivity_is_monotonic(model: TrajectoryModel) -> None:
    levels = [0.0, 0.25, 0.5, 0.75, 1.0]
    limits = [model.thresholds(s) for s in levels]
    for (a, la), (b, lb) in pairwise(limits):
        assert b <= a and lb <= la
    rng = np.random.default_rng(5)
    mixed = [ordinary(rng) for _ in range(150)] + [walk(rng, (0.98, 0.7), (0.02, 0.7))]
    flagged = [{i for i, p in enumerate(mixed) if model.judge(p, s).unusual} for s in levels]  # type: ignore[union-attr]
    for lower, higher in pairwise(flagged):
        assert lower <= higher
    assert len(flagged[-1]) > len(flagged[0])
    assert quantile_for(0.0) < quantile_for(0.5) < quantile_for(1.0)


def test_tracks_too_short_to_judge(model: TrajectoryModel) -> None:
    rng = np.random.default_rng(6)
    blink = walk(rng, (0.5, 0.4), (0.52, 0.4))[:3]
    assert model.judge(blink) is None
    assert model.judge(np.c_[[0.0, 0.4, 0.8], [0.5, 0.5, 0.5], [0.1, 0.1, 0.1]]) is None


def test_tokens_are_resampled_by_distance() -> None:
    rng = np.random.default_rng(7)
    slow = tokenize(walk(rng, (0.1, 0.5), (0.9, 0.5), speed=0.04, jitter=0.0))
    fast = tokenize(walk(rng, (0.1, 0.5), (0.9, 0.5), speed=0.2, jitter=0.0))
    assert abs(len(slow) - len(fast)) <= 1
    assert set(slow.heading.tolist()) == {0}
    assert list(slow.t) == sorted(slow.t)


def test_too_little_history_keeps_a_group_silent() -> None:
    cams = CameraModel.fit(history(20), min_history=50)
    assert cams.models == {}
    assert cams.status == (
        "person: silent, 20 usable past tracks of the 50 needed; "
        "vehicle: silent, 0 usable past tracks of the 50 needed"
    )
    assert cams.judge("person", walk(np.random.default_rng(0), (0.02, 0.82), (0.3, 0.98))) is None
    # Brief tracks that barely move give too few tokens to count towards the history.
    parked = [PastTrack("car", np.c_[np.arange(12) * 0.2, np.full(12, 0.5), np.full(12, 0.5)], 0.0)] * 60
    assert "0 past tracks that move enough of the 50 needed" in CameraModel.fit(parked).status


# --------------------------------------------------------------------------- the rule


def make_rule(
    *, min_history: int = 50, schedule: Schedule | None = None, **fields: object
) -> UnusualActivity:
    config = UnusualActivityRule(type="unusual_activity", min_history=min_history, **fields)  # type: ignore[arg-type]
    geometry = Geometry.build("yard", CameraConfig(), SIZE)
    return UnusualActivity(config, "yard", geometry, schedule, "source-1")


def record(path: np.ndarray, local_id: int = 7, label: str = "person") -> TrackRecord:
    """A finished track whose feet follow ``path`` (normalised) in a SIZE frame."""
    w, h = SIZE
    observations = [
        Observation(i + 1, float(t), (x * w - 15, y * h - 60, x * w + 15, y * h), 0.9)
        for i, (t, x, y) in enumerate(path)
    ]
    still = Kinematics(0.0, 0.0, 0.0, None, "stationary", 0.0, 0.0)
    return TrackRecord(local_id, label, observations, [], still, 0.9)


CORNER = walk(np.random.default_rng(1), (0.02, 0.82), (0.3, 0.98))


def test_the_rule_emits_a_closed_event_for_an_unusual_path() -> None:
    rule = make_rule()
    assert rule.needs_history and "not been loaded" in rule.status
    rule.learn(history())
    assert rule.status.startswith("person: learned from 150 past tracks")
    assert rule.update.__func__ is UnusualActivity.update  # type: ignore[attr-defined]
    at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    rec = record(CORNER + np.array([10.0, 0.0, 0.0]))
    changes = rule.track_ended(rec, at, 20.0)
    assert [c.kind for c in changes] == ["start", "end"]
    event = changes[0].event
    assert changes[1].event is event and not event.open
    assert event.highlight == [rec.observations[-1].box]
    assert (event.start_t, event.end_t) == (rec.start_t, rec.end_t)
    assert event.start_at == datetime(2026, 3, 2, 11, 59, 50, tzinfo=UTC)
    assert event.track_ids == [7] and event.type == "unusual_activity" and event.severity == "low"
    assert event.summary.startswith("person took an unusual path: moved ")
    assert event.details["score"] > event.details["threshold"] or (
        event.details["local_score"] > event.details["local_threshold"]
    )
    assert event.details["reason"] in event.summary
    # Ordinary tracks raise nothing.
    assert rule.track_ended(record(ordinary(np.random.default_rng(9)), local_id=8), at, 20.0) == []


def test_the_rule_normalises_pixels_like_the_history() -> None:
    pts = feet_points(record(CORNER), SIZE)
    assert np.allclose(pts, CORNER)


def test_the_rule_is_silent_without_enough_history() -> None:
    rule = make_rule(min_history=50)
    rule.learn(history(20))
    assert "silent, 20 usable past tracks of the 50 needed" in rule.status
    assert rule.track_ended(record(CORNER), None, 0.0) == []


def test_the_rule_respects_classes_schedule_cooldown_and_short_tracks() -> None:
    people_only = make_rule(classes=["person"])
    people_only.learn(history() + history(60, seed=3, label="car"))
    assert "vehicle" not in people_only.status
    assert people_only.track_ended(record(CORNER, label="car"), None, 0.0) == []
    # Each track is judged once: a track continued under the same id stays quiet during the cooldown.
    assert len(people_only.track_ended(record(CORNER), None, 0.0)) == 2
    assert people_only.track_ended(record(CORNER + np.array([5.0, 0.0, 0.0])), None, 5.0) == []
    assert people_only.track_ended(record(CORNER[:3], local_id=9), None, 0.0) == []

    nights = Schedule(ScheduleConfig(hours=["22:00-06:00"]), "UTC")
    night_rule = make_rule(schedule=nights)
    night_rule.learn(history())
    noon = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert night_rule.track_ended(record(CORNER), noon, 0.0) == []
    assert len(night_rule.track_ended(record(CORNER), noon.replace(hour=23), 0.0)) == 2
    # Without a clock the schedule cannot be checked, and the rule stays on (like Rule.active).
    assert len(night_rule.track_ended(record(CORNER, local_id=11), None, 0.0)) == 2


# --------------------------------------------------------------------------- camera_history


def test_camera_history_reads_finished_tracks_normalised(tmp_path) -> None:
    store = open_store(tmp_path / "data")
    try:
        with store.session() as session:
            cam = Camera(name="yard")
            other = Camera(name="gate")
            session.add_all([cam, other])
            session.flush()
            sources = {}
            for key, camera, status, size in [
                ("small", cam, "complete", (640, 480)),
                ("big", cam, "damaged", (1280, 720)),
                ("busy", cam, "indexing", (640, 480)),
                ("gate", other, "complete", (640, 480)),
            ]:
                src = Source(
                    camera_id=camera.id,
                    uri=key,
                    fingerprint=key,
                    status=status,
                    settings_key="k",
                    width=size[0],
                    height=size[1],
                    native_fps=10.0,
                )
                session.add(src)
                session.flush()
                sources[key] = src.id
            for local_id, (key, start) in enumerate(
                [("small", 0.0), ("small", 5.0), ("big", 1.0), ("busy", 2.0)]
            ):
                src = sources[key]
                track = Track(
                    source_id=src,
                    camera_id=cam.id,
                    local_id=local_id,
                    label="person",
                    start_t=start,
                    end_t=start + 1.0,
                    first_frame=0,
                    last_frame=2,
                    num_observations=3,
                    confidence=0.9,
                    speed_px_s=10.0,
                    speed_bh_s=0.5 + local_id,
                    max_speed_px_s=12.0,
                    direction_deg=0.0,
                    heading="right",
                    displacement_px=20.0,
                    path_px=20.0,
                )
                session.add(track)
                session.flush()
                w = 640 if key != "big" else 1280
                for frame in (2, 0, 1):  # stored out of order: history sorts by frame
                    x = 0.25 * w + 10.0 * frame
                    session.add(
                        ObservationRow(
                            track_id=track.id,
                            frame=frame,
                            t=start + 0.5 * frame,
                            x1=x - 5.0,
                            y1=10.0,
                            x2=x + 5.0,
                            y2=0.5 * (480 if key != "big" else 720),
                            confidence=0.9,
                        )
                    )
        past = camera_history(store, "yard")
        # No wall clock: newest source first, then latest start; the indexing source is left out.
        assert [p.speed_bh_s for p in past] == [2.5, 1.5, 0.5]
        big = past[0]
        assert big.label == "person"
        assert np.allclose(big.points[:, 0], [1.0, 1.5, 2.0])
        assert np.allclose(big.points[:, 1], [0.25, 0.25 + 10 / 1280, 0.25 + 20 / 1280])
        assert np.allclose(big.points[:, 2], 0.5)
        assert np.allclose(past[1].points[:, 1], [0.25, 0.25 + 10 / 640, 0.25 + 20 / 640])
        assert [p.speed_bh_s for p in camera_history(store, "yard", limit=2)] == [2.5, 1.5]
        excluded = camera_history(store, "yard", exclude_source_id=sources["big"])
        assert [p.speed_bh_s for p in excluded] == [1.5, 0.5]
        assert camera_history(store, "gate") == []
        assert camera_history(store, "nowhere") == []
    finally:
        store.close()
