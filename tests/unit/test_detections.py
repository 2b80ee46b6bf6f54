"""Detections: the typed boundary between detector and tracker."""

from __future__ import annotations

import numpy as np
import pytest

from camsight.vision.detections import CARRIED, CLASSES, PERSON, VEHICLES, Detections
from camsight.vision.yolox import _nms


def dets(*rows: tuple[str, float, float, float, float, float]) -> Detections:
    return Detections(
        np.array([r[2:] for r in rows], np.float32).reshape(-1, 4),
        np.array([r[1] for r in rows], np.float32),
        tuple(r[0] for r in rows),
    )


def test_classes():
    assert PERSON in CLASSES
    assert set(VEHICLES) <= set(CLASSES)
    assert set(CARRIED) <= set(CLASSES)
    assert len(set(CLASSES)) == len(CLASSES)


def test_empty():
    d = Detections.empty()
    assert len(d) == 0
    assert d.xyxy.shape == (0, 4)
    assert d.confidence.shape == (0,)
    assert len(d.of(PERSON)) == 0


@pytest.mark.parametrize(
    ("xyxy", "conf", "labels"),
    [
        (np.zeros((2, 4)), np.zeros(2), ("person",)),
        (np.zeros((1, 4)), np.zeros(2), ("person",)),
        (np.zeros((1, 5)), np.zeros(1), ("person",)),
        (np.zeros(4), np.zeros(1), ("person",)),
    ],
)
def test_inconsistent_shapes_are_rejected(xyxy, conf, labels):
    with pytest.raises(ValueError, match="inconsistent"):
        Detections(xyxy, conf, labels)


def test_select_and_of():
    d = dets(
        ("person", 0.9, 0, 0, 10, 20),
        ("car", 0.8, 5, 5, 50, 30),
        ("handbag", 0.4, 8, 10, 12, 16),
        ("person", 0.3, 30, 0, 40, 20),
    )
    people = d.of(PERSON)
    assert people.labels == ("person", "person")
    assert people.confidence.tolist() == pytest.approx([0.9, 0.3])
    assert people.xyxy.tolist() == [[0, 0, 10, 20], [30, 0, 40, 20]]
    assert d.of("car", "handbag").labels == ("car", "handbag")
    assert len(d.of("bus")) == 0
    strong = d.select(d.confidence >= 0.5)
    assert strong.labels == ("person", "car")
    assert strong.xyxy.shape == (2, 4)


def test_nms_is_class_aware():
    boxes = np.array([[0, 0, 100, 200], [2, 2, 101, 199], [0, 0, 100, 200], [300, 0, 350, 50]], np.float32)
    conf = np.array([0.9, 0.6, 0.7, 0.5], np.float32)
    out = _nms(boxes, conf, ["person", "person", "bicycle", "person"], 0.45)
    # The weaker overlapping person goes; the bicycle at the same place stays.
    kept = sorted(zip(out.labels, out.confidence.tolist(), strict=True))
    assert [label for label, _ in kept] == ["bicycle", "person", "person"]
    assert [c for _, c in kept] == pytest.approx([0.7, 0.5, 0.9])
