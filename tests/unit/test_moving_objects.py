"""MovingObjects: moving blobs as boxes of a declared class; merge with the detector's boxes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from camsight.vision.detections import Detections
from camsight.vision.moving_objects import MovingObjects, MovingObjectSettings, merge

H, W = 432, 768  # the car clip's size: reduced 4x to 192x108
FPS = 5.0
#: The frame at which test cars enter, once the background is learnt.
ENTERS = 8
BACKGROUND = np.random.default_rng(7).integers(80, 140, (H, W)).astype(np.int16)


def scene(
    i: int, box: tuple[int, int, int, int] | None = None, value: int = 235, gain: int = 0
) -> np.ndarray:
    """Frame ``i``: a textured road with sensor noise, ``gain`` added, and a flat rectangle ``box``."""
    noise = np.random.default_rng(1000 + i).integers(-3, 4, (H, W))
    image = BACKGROUND + noise + gain
    if box is not None:
        x0, y0, x1, y1 = box
        image[y0:y1, x0:x1] = value
    return np.clip(image, 0, 255).astype(np.uint8)


def car_at(i: int, speed: int = 16, start: int = 40) -> tuple[int, int, int, int]:
    """A 96x60 px rectangle driving right by ``speed`` px a frame."""
    x = start + speed * i
    return (x, 200, x + 96, 260)


def entering(i: int, first: int = ENTERS) -> tuple[int, int, int, int] | None:
    """The car of :func:`car_at`, appearing at frame ``first`` (after the warm-up)."""
    return car_at(i - first) if i >= first else None


def finder(**kw: object) -> MovingObjects:
    return MovingObjects(MovingObjectSettings("car", **kw))  # type: ignore[arg-type]


def run(frames: list[np.ndarray], mo: MovingObjects | None = None, t0: float = 0.0) -> list[Detections]:
    mo = mo or finder()
    return [mo.update(frame, t0 + i / FPS) for i, frame in enumerate(frames)]


@pytest.mark.parametrize("value", [235, 20], ids=["bright", "dark"])
def test_a_moving_rectangle_is_found_with_its_box(value):
    results = run([scene(i, entering(i), value) for i in range(30)])
    assert all(len(d) == 0 for d in results[:ENTERS])
    for i in range(ENTERS, 30):
        found = results[i]
        assert found.labels == ("car",), (i, found)
        assert found.confidence.tolist() == [0.5]
        np.testing.assert_allclose(found.xyxy[0], entering(i), atol=4)
        assert found.xyxy.dtype == np.float32


def test_nothing_during_warm_up():
    # A car already driving when the camera starts: its first positions are
    # partly learnt as background, so its box is only checked once it is past them.
    results = run([scene(i, car_at(i)) for i in range(30)])
    warm_up = [len(d) for i, d in enumerate(results) if i / FPS < 1.0]
    assert warm_up == [0] * 5
    assert all(len(d) >= 1 for d in results[6:])
    for i in range(15, 30):
        np.testing.assert_allclose(results[i].xyxy[0], car_at(i), atol=4)


def test_warm_up_follows_the_timestamps_not_the_frame_count():
    mo = finder(warmup=2.0)
    results = run([scene(i, entering(i, 2)) for i in range(20)], mo, t0=100.0)
    assert [len(d) for d in results[:10]] == [0] * 10
    assert [len(d) for d in results[10:]] == [1] * 10


def test_nothing_on_a_static_scene():
    mo = finder()
    results = run([scene(i) for i in range(60)], mo)
    assert all(len(d) == 0 for d in results)
    assert mo.last_foreground < 0.01


def test_nothing_on_a_static_object():
    results = run([scene(i, (300, 150, 400, 250)) for i in range(40)])
    assert all(len(d) == 0 for d in results)


@pytest.mark.parametrize("gain", [45, -45])
def test_nothing_on_a_global_brightness_jump(gain):
    mo = finder()
    frames = [scene(i, gain=gain if i >= 20 else 0) for i in range(50)]
    results = run(frames, mo)
    assert all(len(d) == 0 for d in results)


def test_auto_exposure_while_an_object_crosses_keeps_the_object():
    # A white car makes the camera darken the whole picture by up to 50 grey levels.
    frames = [scene(i, entering(i), gain=-min(50, 5 * max(0, i - ENTERS))) for i in range(40)]
    results = run(frames)
    assert [len(d) for d in results[ENTERS:]] == [1] * (40 - ENTERS)
    for i in range(ENTERS, 40):
        np.testing.assert_allclose(results[i].xyxy[0], entering(i), atol=4)


def test_a_change_over_most_of_the_picture_reports_nothing_and_is_relearned():
    mo = finder()
    # Lights come on over the left two thirds: too uneven for the exposure compensation.
    lit = np.zeros((H, W), np.int16)
    lit[:, : 2 * W // 3] = 60

    def frame(i: int) -> np.ndarray:
        image = scene(i, entering(i, 30)).astype(np.int16)
        return np.clip(image + (lit if i >= 20 else 0), 0, 255).astype(np.uint8)

    results = run([frame(i) for i in range(50)], mo)
    assert all(len(d) == 0 for d in results[:30])
    # Re-learnt from the changed picture: the car that comes later is found.
    found = [i for i in range(30, 50) if len(results[i]) == 1]
    assert found and found[0] <= 40
    np.testing.assert_allclose(results[45].xyxy[0], entering(45, 30), atol=4)


def test_the_ghost_of_an_object_that_leaves_is_suppressed():
    # A car stands still for the first 4 s (learnt as background), then drives off.
    parked = (100, 200, 196, 260)

    def box(i: int) -> tuple[int, int, int, int]:
        return parked if i < 20 else car_at(i - 20, start=100)

    results = run([scene(i, box(i)) for i in range(45)])
    for i in range(30, 45):
        found = results[i]
        assert len(found) == 1, (i, found)
        np.testing.assert_allclose(found.xyxy[0], box(i), atol=4)
        # Nothing where it stood.
        assert found.xyxy[0, 0] > parked[2]


def test_blobs_outside_the_area_range_are_dropped():
    def moving(i: int, w: int, h: int) -> tuple[int, int, int, int] | None:
        x = 16 * (i - ENTERS)
        return (x, 40, x + w, 40 + h) if i >= ENTERS else None

    small = [scene(i, moving(i, 20, 16)) for i in range(30)]  # 0.1 % of the frame
    assert all(len(d) == 0 for d in run(small))
    huge = [scene(i, moving(i, 400, 300)) for i in range(30)]  # 36 % of the frame
    assert all(len(d) == 0 for d in run(huge))
    assert [len(d) for d in run(huge, finder(max_area=0.5))[ENTERS:]] == [1] * (30 - ENTERS)


def test_label_and_confidence_come_from_the_settings():
    mo = MovingObjects(MovingObjectSettings("person", confidence=0.3))
    found = run([scene(i, entering(i)) for i in range(ENTERS + 2)], mo)[-1]
    assert found.labels == ("person",)
    assert found.confidence.tolist() == pytest.approx([0.3])


def test_a_new_picture_size_starts_again():
    mo = finder()
    run([scene(i, car_at(i)) for i in range(10)], mo)
    other = np.full((240, 320), 100, np.uint8)
    assert len(mo.update(other, 2.0)) == 0
    assert len(mo.update(other, 2.2)) == 0


@pytest.mark.parametrize(
    "kw",
    [
        {"label": "spaceship"},
        {"label": "car", "min_area": 0.3, "max_area": 0.2},
        {"label": "car", "width": 2},
    ],
)
def test_bad_settings_are_refused(kw):
    with pytest.raises(ValueError):
        MovingObjectSettings(**kw)


# --------------------------------------------------------------------------- merge


def boxes(*xyxy: list[float], label: str = "car", confidence: float = 0.5) -> Detections:
    return Detections(
        np.array(xyxy, np.float32).reshape(-1, 4),
        np.full(len(xyxy), confidence, np.float32),
        (label,) * len(xyxy),
    )


def test_merge_keeps_detector_boxes_and_adds_only_unmatched_blobs():
    detected = boxes([0, 0, 100, 100], [200, 0, 300, 100], label="truck", confidence=0.9)
    blobs = boxes(
        [10, 10, 110, 110],  # IoU 0.68 with the first truck
        [190, 0, 400, 100],  # IoU 0.48 with the second
        [500, 0, 600, 100],  # alone
        [0, 300, 100, 400],  # alone
    )
    merged = merge(detected, blobs)
    assert merged.labels == ("truck", "truck", "car", "car")
    # A detector box on a blob keeps its class and confidence and takes the blob's box:
    # the box the tracker gets for the object in the frames the detector misses it.
    np.testing.assert_array_equal(merged.xyxy, blobs.xyxy)
    assert merged.confidence.tolist() == pytest.approx([0.9, 0.9, 0.5, 0.5])
    assert merged.xyxy.dtype == np.float32 and merged.confidence.dtype == np.float32


def test_merge_drops_a_blob_mostly_covered_by_a_small_detector_box():
    # A person box inside a big blob covers little of it: the blob stays.
    # A blob mostly inside a big detector box has a low IoU but is that box's object.
    detected = boxes([0, 0, 400, 400], [600, 0, 620, 40], label="person")
    blobs = boxes([100, 100, 200, 200], [560, 0, 700, 100])
    merged = merge(detected, blobs)
    assert merged.labels == ("person", "person", "car")
    np.testing.assert_array_equal(merged.xyxy[2], [560, 0, 700, 100])


def test_merge_threshold():
    detected = boxes([0, 0, 100, 100], label="bus")
    blob = boxes([60, 0, 160, 100])  # IoU 0.25, 40 % covered
    assert len(merge(detected, blob)) == 2
    assert len(merge(detected, blob, iou=0.2)) == 1


def test_merge_with_nothing_on_either_side():
    detected = boxes([0, 0, 10, 10], label="person")
    blobs = boxes([50, 50, 60, 60])
    assert merge(detected, Detections.empty()) is detected
    assert merge(Detections.empty(), blobs) is blobs
    assert len(merge(Detections.empty(), Detections.empty())) == 0


@pytest.mark.parametrize("found", [boxes([0, 0, 40, 30]), boxes()], ids=["boxes", "none"])
def test_merging_blobs_keeps_the_detectors_faint_person_boxes(found: Detections) -> None:
    # The tracker's second look at someone who fell needs them, whatever the blobs did.
    faint = boxes([200, 100, 260, 130], label="person", confidence=0.05)
    merged = merge(replace(found, faint=faint), boxes([100, 100, 140, 130]))
    assert merged.faint is faint
    assert "person" not in merged.labels
