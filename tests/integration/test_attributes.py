"""Appearance attributes on real crops from ../shared/data, against the labels in ../shared/eval."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from camsight.analytics.attributes import AttributeExtractor
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.tracking.crops import crop_region
from camsight.tracking.kinematics import kinematics
from camsight.vision.detector import create_detector

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def vtest_frames(vtest: Path) -> dict[int, np.ndarray]:
    frames = {}
    with av.open(str(vtest)) as container:
        for i, frame in enumerate(container.decode(video=0), start=1):
            if i > 400:
                break
            if i % 10 == 1:
                frames[i] = frame.to_ndarray(format="bgr24")
    return frames


@pytest.fixture(scope="module")
def gt(shared_data: Path) -> np.ndarray:
    return np.loadtxt(shared_data / "pets09" / "gt_dev.txt", delimiter=",")


@pytest.fixture(scope="module")
def labels(shared_data: Path) -> dict:
    return json.loads((shared_data.parent / "eval" / "search_dev.json").read_text())["people"]


def person_record(pid: int, gt: np.ndarray, frames: dict[int, np.ndarray], n: int = 3) -> TrackRecord:
    """A track of person ``pid`` built from ground-truth boxes, with ``n`` crops spread over time."""
    rows = gt[(gt[:, 1] == pid) & np.isin(gt[:, 0], list(frames))]
    assert len(rows) >= n, f"person {pid} too rarely visible"
    obs, crops = [], []
    picks = set(np.linspace(0, len(rows) - 1, n).round().astype(int).tolist())
    for i, r in enumerate(rows):
        frame = int(r[0])
        box = (float(r[2]), float(r[3]), float(r[2] + r[4]), float(r[3] + r[5]))
        obs.append(Observation(frame, frame / 10.0, box, 1.0))
        if i in picks:
            image = frames[frame]
            x1, y1, x2, y2 = crop_region(box, (image.shape[1], image.shape[0]))
            crops.append(Crop(frame, frame / 10.0, box, 1.0, image[y1:y2, x1:x2].copy(), (x1, y1)))
    return TrackRecord(
        pid, "person", obs, crops, kinematics(obs, "person"), 1.0, labels_seen={"person": len(obs)}
    )


@pytest.fixture(scope="module")
def extractor() -> AttributeExtractor:
    return AttributeExtractor()


@pytest.mark.parametrize("pid", [1, 9, 13, 14, 16, 19])
def test_clothing_colours_match_the_labels(pid, gt, vtest_frames, labels, extractor) -> None:
    attrs = extractor.extract(person_record(pid, gt, vtest_frames))
    facets = attrs.facet_scores()
    for region in ("upper", "lower"):
        for colour in labels[str(pid)][region]:
            assert facets.get(f"{region}:{colour}", 0) >= 0.5, (pid, region, colour, attrs.colours[region])
    # Evidence explains each colour.
    assert all(k in attrs.evidence for k in facets if k.startswith(("upper:", "lower:")))


def test_no_sensitive_attributes_are_computed(gt, vtest_frames, extractor) -> None:
    attrs = extractor.extract(person_record(16, gt, vtest_frames)).to_dict()
    text = json.dumps(attrs).lower()
    for word in ("sex", "gender", "male", "female", "age", "ethnic", "race", "face"):
        assert f'"{word}' not in text


def test_white_hood_is_headwear(gt, vtest_frames, extractor) -> None:
    attrs = extractor.extract(person_record(16, gt, vtest_frames))
    assert attrs.facet_scores().get("headwear:white", 0) >= 0.5, attrs.colours["headwear"]
    assert (attrs.headwear_worn or 0) >= 0.5


def test_people_walking_in_vtest_are_walking_and_standing(gt, vtest_frames, extractor) -> None:
    attrs = extractor.extract(person_record(9, gt, vtest_frames))
    assert max(attrs.posture, key=attrs.posture.get) == "standing"
    assert attrs.motion.get("walking", 0) >= 0.5, attrs.motion


def test_vehicle_type_and_body_colour(shared_data: Path, yolox_model: Path, extractor) -> None:
    """The parking-lot clip has a white car: its body colour comes out white or grey."""
    detector = create_detector("yolox", yolox_model)
    crops, obs = [], []
    with av.open(str(shared_data / "intel" / "person-bicycle-car-detection.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0), start=1):
            if i % 15:
                continue
            image = frame.to_ndarray(format="bgr24")
            cars = detector.detect(image).of("car")
            if len(cars):
                box = tuple(float(v) for v in cars.xyxy[int(cars.confidence.argmax())])
                obs.append(Observation(i, i / 12.0, box, float(cars.confidence.max())))
                if len(crops) < 3:
                    x1, y1, x2, y2 = crop_region(box, (image.shape[1], image.shape[0]))
                    crops.append(Crop(i, i / 12.0, box, 1.0, image[y1:y2, x1:x2].copy(), (x1, y1)))
    assert len(crops) >= 1, "no car found in the parking-lot clip"
    record = TrackRecord(1, "car", obs, crops, kinematics(obs, "car"), 0.8, labels_seen={"car": len(obs)})
    attrs = extractor.extract(record)
    assert attrs.vehicle == {"car": 1.0}
    body = attrs.colours["body"]
    assert max(body, key=body.get) in ("white", "grey"), body
