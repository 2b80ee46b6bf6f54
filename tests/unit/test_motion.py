"""MotionGate: skip still frames, pass moving ones, never skip longer than max_skip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from camsight.vision.motion import MotionGate, MotionSettings

H, W = 240, 320


def scene(square_x: int | None = None, noise_seed: int | None = None) -> np.ndarray:
    """A textured grey background, optionally with a 40 px white square."""
    rng = np.random.default_rng(123)
    image = (rng.integers(70, 90, (H, W, 1)) * np.ones((1, 1, 3))).astype(np.uint8)
    if noise_seed is not None:
        # Sensor noise of a few grey levels: not motion.
        noise = np.random.default_rng(noise_seed).integers(-3, 4, image.shape)
        image = np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)
    if square_x is not None:
        image[100:140, square_x : square_x + 40] = 255
    return image


def test_first_frame_always_goes_to_the_detector():
    assert MotionGate().check(scene(), 0.0) is True


def test_static_frames_are_skipped():
    gate = MotionGate()
    gate.check(scene(), 0.0)
    results = [gate.check(scene(noise_seed=i), 0.2 * i) for i in range(1, 9)]
    assert results == [False] * 8
    assert gate.last_fraction < gate.settings.area_fraction


def test_a_moving_square_triggers():
    gate = MotionGate()
    gate.check(scene(square_x=20), 0.0)
    assert gate.check(scene(square_x=20), 0.2) is False
    assert gate.check(scene(square_x=60), 0.4) is True
    assert gate.last_fraction >= gate.settings.area_fraction


def test_an_object_entering_a_still_scene_triggers():
    gate = MotionGate()
    gate.check(scene(), 0.0)
    assert gate.check(scene(square_x=150), 0.2) is True


def test_slow_motion_accumulates_against_the_last_detected_frame():
    gate = MotionGate(MotionSettings(area_fraction=0.01, max_skip=100))
    gate.check(scene(square_x=100), 0.0)
    # One pixel a frame is too little to matter on its own ...
    decisions = [gate.check(scene(square_x=100 + i), 0.1 * i) for i in range(1, 40)]
    assert decisions[0] is False
    # ... but the gate compares with the last frame it passed, so it fires eventually.
    assert any(decisions)


def test_max_skip_forces_a_check():
    gate = MotionGate(MotionSettings(max_skip=2.0))
    times = [0.5 * i for i in range(13)]  # 0 .. 6 s of a still scene
    passed = [t for t in times if gate.check(scene(), t)]
    assert passed == [0.0, 2.0, 4.0, 6.0]


@pytest.mark.parametrize("max_skip", [0.5, 1.0, 3.0])
def test_never_skips_longer_than_max_skip(max_skip):
    gate = MotionGate(MotionSettings(max_skip=max_skip))
    times = [0.1 * i for i in range(100)]
    passed = [t for t in times if gate.check(scene(), t)]
    assert np.diff(passed).max() <= max_skip + 0.1 + 1e-9


def test_a_change_of_frame_size_is_checked():
    gate = MotionGate()
    gate.check(scene(), 0.0)
    assert gate.check(np.zeros((120, 90, 3), np.uint8), 0.1) is True


def test_pixel_threshold_decides_what_counts_as_a_change():
    dim = scene()
    brighter = np.clip(dim.astype(int) + 12, 0, 255).astype(np.uint8)  # global +12 grey levels
    strict = MotionGate(MotionSettings(pixel_threshold=10))
    lax = MotionGate(MotionSettings(pixel_threshold=30))
    for gate in (strict, lax):
        gate.check(dim, 0.0)
    assert strict.check(brighter, 0.2) is True
    assert lax.check(brighter, 0.2) is False


def test_grey_and_colour_frames_give_the_same_decisions():
    frames = [scene(square_x=x) for x in (20, 20, 60, 60, 100)]
    colour, grey = MotionGate(), MotionGate()
    a = [colour.check(f, 0.2 * i) for i, f in enumerate(frames)]
    b = [grey.check(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), 0.2 * i) for i, f in enumerate(frames)]
    assert a == b == [True, False, True, False, True]
