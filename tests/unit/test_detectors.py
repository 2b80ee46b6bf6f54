"""The SSD and YOLOX detectors on a real frame of vtest.avi (PETS09)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import supervision as sv

from camsight.sources.video_file import VideoFile
from camsight.vision.detections import CLASSES, PERSON
from camsight.vision.detector import create_detector
from camsight.vision.ssd import SsdMobileNetDetector
from camsight.vision.yolox import YoloxDetector

FRAME_T = 20.0  # vtest.avi frame 201: seven people in the ground truth


@pytest.fixture(scope="module")
def vtest_frame(vtest):
    with VideoFile(vtest) as video:
        frame = video.frame_at(FRAME_T)
    gt = np.loadtxt(vtest.with_name("gt_dev.txt"), delimiter=",", ndmin=2)
    rows = gt[gt[:, 0] == frame.index][:, 2:6]
    people = np.column_stack([rows[:, :2], rows[:, :2] + rows[:, 2:]])
    return frame, people


@pytest.fixture(scope="module")
def yolox(yolox_model):
    return YoloxDetector(yolox_model)


@pytest.fixture(scope="module")
def ssd():
    return SsdMobileNetDetector()


pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ["yolox", "ssd"])
def test_finds_the_people_in_a_real_frame(request, vtest_frame, name):
    detector = request.getfixturevalue(name)
    frame, truth = vtest_frame
    assert frame.index == 201
    assert len(truth) >= 5
    found = detector.detect(frame.image)
    w, h = frame.size
    # Only camsight's classes, boxes inside the image, consistent arrays.
    assert set(found.labels) <= set(CLASSES)
    assert found.xyxy.dtype == np.float32
    assert len(found.confidence) == len(found) == len(found.xyxy)
    assert (found.xyxy[:, [0, 2]] >= 0).all() and (found.xyxy[:, [0, 2]] <= w).all()
    assert (found.xyxy[:, [1, 3]] >= 0).all() and (found.xyxy[:, [1, 3]] <= h).all()
    assert (found.xyxy[:, 2] > found.xyxy[:, 0]).all() and (found.xyxy[:, 3] > found.xyxy[:, 1]).all()
    assert ((found.confidence > 0) & (found.confidence <= 1)).all()
    people = found.of(PERSON)
    people = people.select(people.confidence >= 0.3)
    assert len(people) >= 5
    # Most ground-truth people are matched by a confident box (IoU >= 0.5).
    matched = (sv.box_iou_batch(truth, people.xyxy.astype(np.float64)).max(axis=1) >= 0.5).sum()
    assert matched >= len(truth) - 2, f"{matched} of {len(truth)} people found by {name}"


@pytest.mark.parametrize("name", ["yolox", "ssd"])
def test_nothing_in_a_blank_image(request, name):
    detector = request.getfixturevalue(name)
    found = detector.detect(np.full((432, 768, 3), 128, np.uint8))
    assert len(found.select(found.confidence >= 0.3)) == 0


def test_boxes_follow_the_image_size(yolox, vtest_frame):
    """Detections on a half-size frame are the full-size ones, halved."""
    frame, _ = vtest_frame
    full = yolox.detect(frame.image).of(PERSON)
    half_img = cv2.resize(frame.image, (frame.size[0] // 2, frame.size[1] // 2), interpolation=cv2.INTER_AREA)
    half = yolox.detect(half_img).of(PERSON)
    full = full.select(full.confidence >= 0.5)
    half = half.select(half.confidence >= 0.5)
    assert len(full) >= 3
    iou = sv.box_iou_batch(full.xyxy.astype(np.float64) / 2, half.xyxy.astype(np.float64))
    assert (iou.max(axis=1) >= 0.6).mean() >= 0.75


def test_create_detector_picks_the_backend(yolox_model):
    assert create_detector("yolox", yolox_model).name == "yolox"
    assert create_detector("ssd").name == "ssd"
    with pytest.raises(ValueError, match="unknown detector"):
        create_detector("nope")  # type: ignore[arg-type]
