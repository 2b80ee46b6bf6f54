"""Speed, direction and heading of a track from its boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camsight.records.tracks import Observation
from camsight.tracking.kinematics import anchor_points, kinematics


def moving(
    vx: float, vy: float, seconds: float = 10.0, fps: float = 5.0, size=(40, 100), jitter: float = 0.0
):
    """Observations of a box moving at (vx, vy) px/s, optionally with box jitter."""
    rng = np.random.default_rng(0)
    w, h = size
    obs = []
    for i in range(int(seconds * fps) + 1):
        t = i / fps
        x, y = 200 + vx * t, 200 + vy * t
        jx, jy = rng.normal(0, jitter, 2) if jitter else (0.0, 0.0)
        obs.append(Observation(i + 1, t, (x + jx, y + jy, x + w + jx, y + h + jy), 0.9))
    return obs


@pytest.mark.parametrize(
    ("vx", "vy", "heading", "direction"),
    [
        (50, 0, "right", 0),
        (-50, 0, "left", 180),
        (0, 40, "down", 90),
        (0, -40, "up", 270),
        (30, 30, "down", 45),  # 45 deg is the right/down border; image y grows downwards
        (40, -10, "right", 346),
    ],
)
def test_direction_and_heading(vx, vy, heading, direction):
    k = kinematics(moving(vx, vy), "person")
    assert k.heading == heading
    assert k.direction_deg == pytest.approx(direction, abs=1.0)


def test_speed_of_a_long_track():
    k = kinematics(moving(60, 0, seconds=20), "car")
    assert k.speed_px_s == pytest.approx(60, rel=0.03)
    assert k.max_speed_px_s == pytest.approx(60, rel=0.05)
    assert k.speed_bh_s == pytest.approx(60 / 100, rel=0.03)
    assert k.displacement_px == pytest.approx(60 * 20, rel=0.03)
    assert k.path_px == pytest.approx(k.displacement_px, rel=0.01)


@pytest.mark.parametrize("seconds", [2.0, 1.0])
def test_speed_of_a_short_track(seconds):
    k = kinematics(moving(50, 0, seconds=seconds), "person")
    assert k.speed_px_s == pytest.approx(50, rel=0.05)


def test_speed_does_not_depend_on_box_jitter():
    still = kinematics(moving(80, 0), "person")
    shaky = kinematics(moving(80, 0, jitter=2.0), "person")
    assert shaky.speed_px_s == pytest.approx(still.speed_px_s, rel=0.1)
    assert shaky.heading == "right"


def test_stationary_object_with_jitter():
    k = kinematics(moving(0, 0, jitter=3.0), "person")
    assert k.heading == "stationary"
    assert k.direction_deg is None
    assert k.displacement_px < 0.2 * 100


def test_single_observation_is_stationary():
    k = kinematics([Observation(1, 0.0, (0, 0, 10, 20), 0.9)], "person")
    assert (k.speed_px_s, k.heading, k.direction_deg, k.path_px) == (0.0, "stationary", None, 0.0)


def test_speed_uses_real_time_not_frame_count():
    """At a variable frame rate the speed comes from the timestamps."""
    times = [0, 0.1, 0.2, 1.5, 1.6, 3.0, 3.1, 5.0, 6.5, 8.0, 8.1, 10.0]
    obs = [Observation(i + 1, t, (20 * t, 0, 20 * t + 30, 60), 0.9) for i, t in enumerate(times)]
    k = kinematics(obs, "car")
    assert k.speed_px_s == pytest.approx(20, rel=0.1)
    assert k.direction_deg == pytest.approx(0, abs=1)


def test_a_person_is_anchored_at_the_feet():
    obs = [Observation(1, 0.0, (10, 20, 30, 120), 0.9)]
    assert anchor_points(obs, "person").tolist() == [[20, 120]]
    assert anchor_points(obs, "car").tolist() == [[20, 70]]


def test_a_person_bending_down_is_not_moving():
    """The box top drops (bending) while the feet stay: not a movement."""
    obs = [Observation(i + 1, i * 0.2, (100, 100 + 6 * i, 140, 300), 0.9) for i in range(20)]
    assert kinematics(obs, "person").heading == "stationary"
    assert math.isclose(kinematics(obs, "person").displacement_px, 0, abs_tol=1e-6)
