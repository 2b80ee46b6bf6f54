"""TamperingDetector on synthetic scenes: each kind of tampering, and healthy views that must stay quiet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from camsight.analytics.geometry import Geometry
from camsight.analytics.rules.base import EventChange, FrameContext
from camsight.analytics.rules.tampering import TamperingDetector, Thresholds, features
from camsight.analytics.schedule import Schedule
from camsight.config import CameraConfig, ScheduleConfig, TamperingRule
from camsight.sources.frame import Frame

W, H = 320, 240
FPS = 5.0
#: A Tuesday noon (UTC), for the schedule test.
TUESDAY = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def scene(seed: int = 1) -> np.ndarray:
    """A textured view (float32): coarse light and dark areas, mid-size blobs, fine texture, edges."""
    rng = np.random.default_rng(seed)
    coarse = cv2.resize(
        rng.uniform(50, 190, (6, 8)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC
    )
    blobs = cv2.resize(
        rng.uniform(-35, 35, (30, 40)).astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR
    )
    fine = rng.uniform(-12, 12, (H, W)).astype(np.float32)
    image = coarse + blobs + fine
    for _ in range(20):
        x, y = int(rng.integers(0, W - 60)), int(rng.integers(0, H - 40))
        image[y : y + int(rng.integers(8, 40)), x : x + int(rng.integers(8, 60))] += rng.uniform(-70, 70)
    return np.clip(image, 0, 255)


BASE = scene(1)
OTHER = scene(2)

Draw = Callable[[float], np.ndarray]


def healthy(t: float, *, gain: float = 1.0, seed: int = 0) -> np.ndarray:
    """The base view with sensor noise and a person-sized dark blob walking across every 10 s."""
    rng = np.random.default_rng(seed + int(t * 1000))
    image = BASE * gain + rng.normal(0, 2.0, BASE.shape)
    x = int((t % 10) / 10 * (W + 30)) - 30
    image[120:200, max(0, x) : max(0, x + 30)] = 40 * gain
    return np.clip(image, 0, 255).astype(np.uint8)


def frame(i: int, t: float, gray: np.ndarray) -> Frame:
    return Frame(i, t, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))


def detector(**options: object) -> TamperingDetector:
    config = TamperingRule(type="tampering", **options)  # type: ignore[arg-type]
    return TamperingDetector(config, "cam", Geometry.build("cam", CameraConfig(), (W, H)), None, "clip")


def run(
    det: TamperingDetector,
    draw: Draw,
    seconds: float,
    *,
    start: float = 0.0,
    at: datetime | None = None,
    finish: bool = True,
) -> list[EventChange]:
    """Feed ``seconds`` of frames at FPS drawn by ``draw(t)``; close open events at the end."""
    changes: list[EventChange] = []
    n = round(seconds * FPS)
    t = start
    for i in range(n):
        t = start + i / FPS
        when = at + timedelta(seconds=t) if at is not None else None
        ctx = FrameContext(t=t, at=when, frame=frame(i + 1, t, draw(t)), objects=[])
        changes += det.update(ctx, {})
    if finish:
        changes += det.finish(t, at + timedelta(seconds=t) if at is not None else None)
    return changes


def events(changes: list[EventChange]) -> list[tuple[str, str, float, float | None]]:
    """(change kind, tampering kind, start_t, end_t) of each change, for readable asserts."""
    return [(c.kind, c.event.details["kind"], c.event.start_t, c.event.end_t) for c in changes]


def between(t0: float, t1: float, bad: Callable[[np.ndarray], np.ndarray]) -> Draw:
    """Healthy frames, changed by ``bad`` from ``t0`` until ``t1``."""

    def draw(t: float) -> np.ndarray:
        image = healthy(t)
        return bad(image) if t0 <= t < t1 else image

    return draw


def patch(share: float, value: int = 20) -> Callable[[np.ndarray], np.ndarray]:
    """A uniform patch over ``share`` of the picture, centred."""
    side = np.sqrt(share)
    h, w = round(H * side), round(W * side)
    y, x = (H - h) // 2, (W - w) // 2

    def apply(image: np.ndarray) -> np.ndarray:
        image = image.copy()
        image[y : y + h, x : x + w] = value
        return image

    return apply


def blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda image: cv2.GaussianBlur(image, (0, 0), sigma)


def shift(fraction: float) -> Callable[[np.ndarray], np.ndarray]:
    """The camera turned: the picture's content moves right by ``fraction`` of the width."""
    m = np.float32([[1, 0, fraction * W], [0, 1, 0]])
    return lambda image: cv2.warpAffine(image, m, (W, H), borderMode=cv2.BORDER_REPLICATE)


def only_event(changes: list[EventChange]) -> tuple[str, float, float | None, dict]:
    starts = [c for c in changes if c.kind == "start"]
    ends = [c for c in changes if c.kind == "end"]
    assert len(starts) == 1 and len(ends) == 1, events(changes)
    event = ends[0].event
    assert event is starts[0].event
    assert event.type == "tampering"
    return event.details["kind"], event.start_t, event.end_t, event.details


# --------------------------------------------------------------------------- healthy views


def test_healthy_view_with_brightness_drift_and_people_raises_nothing():
    det = detector()
    # Light falls to 55% over two minutes (dusk), with people walking through all along.
    changes = run(det, lambda t: healthy(t, gain=1.0 - 0.45 * t / 120), 120)
    assert changes == []
    assert det.last is not None and det.last.kind is None


def test_lights_switched_on_is_not_tampering():
    det = detector()
    # A sudden 40% brighter scene (lights on) changes no structure.
    changes = run(det, lambda t: healthy(t, gain=1.0 if t < 10 else 1.4), 30)
    assert changes == []


def test_nothing_is_reported_while_learning():
    det = detector()
    changes = run(det, lambda t: np.full((H, W), 16, np.uint8), 3)
    assert changes == [] and det.last is None


# --------------------------------------------------------------------------- each kind


def test_black_patch_is_blocked_from_when_it_appeared_until_it_went():
    changes = run(detector(), between(10, 30, patch(0.6)), 40)
    kind, start, end, details = only_event(changes)
    assert kind == "blocked"
    assert 10.0 <= start <= 10.4
    assert details["fired_t"] >= start + 2.0
    assert end is not None and 30.0 <= end <= 31.0
    assert details["covered"] >= 0.45
    assert "blocked" in changes[0].event.summary


def test_lights_out_is_blocked_and_dark():
    dark = lambda image: np.full_like(image, 17)  # noqa: E731
    kind, start, _, details = only_event(run(detector(), between(10, 60, dark), 30))
    assert kind == "blocked" and details.get("dark") is True
    assert 10.0 <= start <= 10.4


def test_heavy_blur_is_defocus():
    changes = run(detector(), between(10, 60, blur(5.0)), 30)
    kind, start, _, details = only_event(changes)
    assert kind == "defocus"
    assert 10.0 <= start <= 10.4
    assert details["sharpness"] < 0.5
    assert "focus" in changes[0].event.summary


def test_shifted_camera_is_moved_with_its_shift():
    changes = run(detector(), between(10, 60, shift(0.10)), 30)
    kind, start, _, details = only_event(changes)
    assert kind == "moved"
    assert 10.0 <= start <= 10.4
    assert details["shift_x"] == pytest.approx(0.10, abs=0.015)
    assert abs(details["shift_y"]) < 0.015
    assert "right" in changes[0].event.summary


def test_camera_moved_back_ends_the_event():
    _, _, end, _ = only_event(run(detector(), between(10, 25, shift(-0.08)), 40))
    assert end is not None and 25.0 <= end <= 26.0


def test_camera_reaimed_at_another_scene_is_moved():
    def draw(t: float) -> np.ndarray:
        if t < 10:
            return healthy(t)
        rng = np.random.default_rng(int(t * 1000))
        return np.clip(OTHER + rng.normal(0, 2.0, OTHER.shape), 0, 255).astype(np.uint8)

    kind, start, _, details = only_event(run(detector(), draw, 30))
    assert kind == "moved" and "shift_x" not in details
    assert 10.0 <= start <= 10.4


def test_small_shift_is_not_moved_at_default_sensitivity():
    # 2% of the width: wind sway or a loose mount, not a moved camera.
    assert run(detector(), between(10, 60, shift(0.02)), 30) == []


# --------------------------------------------------------------------------- episodes


def test_problem_shorter_than_min_seconds_is_not_reported():
    assert run(detector(min_seconds=2.0), between(10, 11.4, patch(0.7)), 25) == []


def test_brief_flicker_keeps_one_event():
    cover = patch(0.7)

    def draw(t: float) -> np.ndarray:
        image = healthy(t)
        covered = 10 <= t < 30 and not 18 <= t < 18.6
        return cover(image) if covered else image

    kind, _, end, _ = only_event(run(detector(), draw, 40))
    assert kind == "blocked" and end is not None and end >= 30.0


def test_cooldown_merges_a_quick_repeat_and_zero_cooldown_does_not():
    cover = patch(0.7)

    def draw(t: float) -> np.ndarray:
        image = healthy(t)
        return cover(image) if 10 <= t < 20 or 26 <= t < 36 else image

    assert len([c for c in run(detector(cooldown=60), draw, 45) if c.kind == "start"]) == 1
    starts = [c for c in run(detector(cooldown=0), draw, 45) if c.kind == "start"]
    assert [round(c.event.start_t) for c in starts] == [10, 26]


def test_sensitivity_scales_what_counts_as_blocked():
    small_patch = between(10, 60, patch(0.3))
    assert run(detector(sensitivity=0.5), small_patch, 25) == []
    assert only_event(run(detector(sensitivity=1.0), small_patch, 25))[0] == "blocked"
    strict, lenient = Thresholds.for_sensitivity(1.0), Thresholds.for_sensitivity(0.0)
    assert strict.covered < lenient.covered and strict.shift < lenient.shift
    assert strict.sharpness > lenient.sharpness


def test_finish_closes_an_open_event_at_the_end_of_the_file():
    changes = run(detector(), between(10, 99, patch(0.7)), 20)
    _, _, end, _ = only_event(changes)
    assert end == pytest.approx(19.8)


def test_no_event_outside_the_schedule():
    config = TamperingRule(type="tampering", schedule=ScheduleConfig(days=["mon"]))
    schedule = Schedule(ScheduleConfig(days=["mon"]), "UTC")
    det = TamperingDetector(config, "cam", Geometry.build("cam", CameraConfig(), (W, H)), schedule, "clip")
    assert run(det, between(10, 60, patch(0.7)), 25, at=TUESDAY) == []


def test_reference_is_learned_again_when_the_resolution_changes():
    det = detector()
    run(det, healthy, 10, finish=False)
    bigger = lambda t: cv2.resize(healthy(t), (2 * W, 2 * H))  # noqa: E731
    assert run(det, bigger, 20, start=10.0) == []


# --------------------------------------------------------------------------- video lost


def test_idle_reports_video_lost_after_lost_seconds_and_ends_when_frames_return():
    det = detector(lost_seconds=10)
    run(det, healthy, 10, finish=False)  # last frame at 9.8
    assert det.idle(15.0, None) == []
    (start,) = det.idle(20.0, None)
    assert start.kind == "start" and start.event.details["kind"] == "video_lost"
    assert start.event.start_t == pytest.approx(9.8)
    assert det.idle(25.0, None) == []  # still the same loss
    changes = run(det, healthy, 5, start=30.0)
    assert events(changes) == [("end", "video_lost", pytest.approx(9.8), pytest.approx(30.0))]
    assert "20 s" in changes[0].event.summary


def test_finish_closes_video_lost_when_frames_never_return():
    det = detector(lost_seconds=10)
    run(det, healthy, 10, finish=False)
    (start,) = det.idle(21.0, None)
    (end,) = det.finish(30.0, None)
    assert end.kind == "end" and end.event is start.event and end.event.end_t == 30.0


def test_timestamp_gap_in_a_file_is_video_lost():
    det = detector(lost_seconds=10)
    changes = run(det, healthy, 10, finish=False)
    changes += run(det, healthy, 10, start=25.0)
    assert events(changes) == [
        ("start", "video_lost", pytest.approx(9.8), pytest.approx(25.0)),
        ("end", "video_lost", pytest.approx(9.8), pytest.approx(25.0)),
    ]


def test_gap_shorter_than_lost_seconds_is_fine():
    det = detector(lost_seconds=10)
    changes = run(det, healthy, 10, finish=False) + run(det, healthy, 10, start=15.0)
    assert changes == []


def test_video_lost_carries_wall_clock_times():
    det = detector(lost_seconds=5)
    run(det, healthy, 10, at=TUESDAY, finish=False)
    (start,) = det.idle(16.0, TUESDAY + timedelta(seconds=16))
    assert start.event.start_at == TUESDAY + timedelta(seconds=9.8)


# --------------------------------------------------------------------------- features


@pytest.mark.parametrize("size", [(768, 576), (768, 432), (1920, 1080), (352, 288), (100, 60)])
def test_features_of_any_frame_size(size):
    w, h = size
    f = features(np.random.default_rng(0).integers(0, 255, (h, w), dtype=np.uint8))
    assert 100 <= f.small.shape[1] <= 320 or w < 160
    assert f.mean.shape[1] == 16 and f.mean.shape == f.fine.shape == f.edges.shape
