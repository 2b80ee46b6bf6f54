"""Attributes from many views and the person attributes model, on real footage.

The Intel indoor clip (``../shared/data/intel/one-by-one-person-detection.mp4``)
is labelled in ``bench/labels/one-by-one-person-detection.json``: six people
walk up one at a time, three with long hair, none with a hat or a bag, one in
blue jeans. Tracks are built here from real YOLOX detections, with views
taken as the track builder takes them; the attributes model is installed with
the real ``camsight models pull ... --from ../shared/models``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import av
import pytest

from camsight.analytics.attributes import AttributeExtractor
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.tracking.crops import crop_region
from camsight.tracking.kinematics import kinematics
from camsight.vision.detector import create_detector
from camsight.vision.light import estimate_illuminant
from camsight.vision.person_attributes import ATTRIBUTES, REGISTRY_NAME, PersonAttributeModel
from tests.conftest import REPO_ROOT, SHARED, cli_env, remux, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABELS = REPO_ROOT / "bench" / "labels" / "one-by-one-person-detection.json"
SENSITIVE = ("male", "sex", "gender")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The attributes model (and YOLOX) installed from ../shared/models as set-up does."""
    if not (SHARED / "models" / "openvino" / f"{REGISTRY_NAME}.xml").is_file():
        pytest.skip(f"the OpenVINO models are not in {SHARED / 'models' / 'openvino'}")
    folder = tmp_path_factory.mktemp("models")
    for name in (REGISTRY_NAME, "yolox-nano"):
        proc = run_cli("models", "pull", name, "--from", SHARED / "models", "--dir", folder)
        assert proc.returncode == 0, proc.stderr
    assert (folder / REGISTRY_NAME / f"{REGISTRY_NAME}.bin").is_file()
    return folder


@pytest.fixture(scope="module")
def labelled() -> dict:
    return json.loads(LABELS.read_text())


@pytest.fixture(scope="module")
def intel_tracks(shared_data: Path, yolox_model: Path, labelled: dict) -> dict[str, TrackRecord]:
    """One track per labelled person: YOLOX boxes every 5th frame, views spread over the track."""
    detector = create_detector("yolox", yolox_model)
    people = labelled["people"]
    obs: dict[str, list[Observation]] = {p: [] for p in people}
    views: dict[str, list[Crop]] = {p: [] for p in people}
    with av.open(str(shared_data / labelled["video"])) as container:
        for i, frame in enumerate(container.decode(video=0), start=1):
            pid = next((p for p, info in people.items() if info["frames"][0] <= i <= info["frames"][1]), None)
            if pid is None or i % 5:
                continue
            image = frame.to_ndarray(format="bgr24")
            found = detector.detect(image).of("person")
            if not len(found):
                continue
            box = tuple(float(v) for v in found.xyxy[int(found.confidence.argmax())])
            obs[pid].append(Observation(i, i / 10.0, box, float(found.confidence.max())))  # type: ignore[arg-type]
            h, w = image.shape[:2]
            if i % 20 == 0 and box[0] > 1 and box[2] < w - 1:
                x1, y1, x2, y2 = crop_region(box, (w, h), margin=0.1)  # type: ignore[arg-type]
                light = estimate_illuminant(image)
                views[pid].append(
                    Crop(
                        i,
                        i / 10.0,
                        box,
                        1.0,
                        image[y1:y2, x1:x2].copy(),
                        (x1, y1),
                        (light.white_level, *light.gains),
                    )  # type: ignore[arg-type]
                )
    out = {}
    for pid in people:
        assert len(views[pid]) >= 3, f"person {pid}: too few views"
        o = obs[pid]
        out[pid] = TrackRecord(
            1, "person", o, views[pid][:3], kinematics(o, "person"), 0.9, samples=views[pid][:16]
        )
    return out


@pytest.fixture(scope="module")
def with_model(models_dir: Path) -> AttributeExtractor:
    return AttributeExtractor(person_model_path=models_dir / REGISTRY_NAME / f"{REGISTRY_NAME}.xml")


def test_labelled_clothing_colours_from_many_views(intel_tracks, labelled, with_model) -> None:
    attributes = with_model.extract_all(list(intel_tracks.values()))
    for (pid, _), attrs in zip(intel_tracks.items(), attributes, strict=True):
        facets = attrs.facet_scores()
        for region in ("upper", "lower"):
            for colour in labelled["people"][pid][region]:
                got = facets.get(f"{region}:{colour}", 0)
                assert got >= 0.5, (pid, region, colour, attrs.colours[region])
        assert "views over" in attrs.evidence[f"upper:{labelled['people'][pid]['upper'][0]}"]


def test_denim_reads_blue_not_black(intel_tracks, with_model) -> None:
    """F wears dark indigo jeans: blue, and not also a pair of black trousers."""
    lower = with_model.extract(intel_tracks["F"], None).colours["lower"]
    assert lower.get("blue", 0) >= 0.5, lower
    assert lower.get("black", 0) < 0.5, lower


def test_long_hair_is_not_headwear(intel_tracks, labelled, with_model) -> None:
    """Nobody in the clip wears a hat; three have long hair, and the wall beside each head is white."""
    attributes = with_model.extract_all(list(intel_tracks.values()))
    for pid, attrs in zip(intel_tracks, attributes, strict=True):
        assert (attrs.headwear_worn or 0) < 0.5, (pid, labelled["people"][pid]["hair"], attrs.evidence)
        assert max(attrs.colours["headwear"].values(), default=0) < 0.5, (pid, attrs.colours["headwear"])
        assert "attributes model" in attrs.evidence["headwear:worn"]
        # No bag is carried either.
        assert max(attrs.carried.values(), default=0) < 0.5, (pid, attrs.carried)


class _FailsOnWideViews(PersonAttributeModel):
    """The real model, failing on every second batch: the wide views' pass (a crash mid-index)."""

    calls = 0

    def predict(self, images):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls % 2 == 0:
            raise RuntimeError("inference failed on the wide views")
        return super().predict(images)


def test_a_model_failing_on_the_wide_views_leaves_bags_from_the_tight_ones(
    models_dir: Path, intel_tracks, caplog: pytest.LogCaptureFixture
) -> None:
    """Bags are read from views with room at the sides; if that pass fails, the tight views'
    answers stand (with a warning), and nothing else is lost."""
    path = models_dir / REGISTRY_NAME / f"{REGISTRY_NAME}.xml"
    records = [
        replace(rec, samples=[replace(v, wide=v.image) for v in rec.samples]) for rec in intel_tracks.values()
    ]
    plain = AttributeExtractor(use_pose=False, person_model_path=path)
    tight = plain.extract_all(list(intel_tracks.values()))
    failing = AttributeExtractor(use_pose=False)
    failing._person_model, failing._person_model_tried = _FailsOnWideViews(path), True
    with caplog.at_level("WARNING", logger="camsight.analytics.attributes"):
        got = failing.extract_all(records)
    assert "failed on the wide views" in caplog.text
    assert failing.person_model is not None and failing.person_model.calls == 2
    for before, after in zip(tight, got, strict=True):
        assert after.carried == before.carried
        assert after.colours == before.colours
        assert "attributes model" in after.evidence["headwear:worn"]


def test_model_output_keeps_no_sex_answer(models_dir: Path, intel_tracks) -> None:
    model = PersonAttributeModel(models_dir / REGISTRY_NAME / f"{REGISTRY_NAME}.xml")
    answers = model.predict([v.image for v in intel_tracks["A"].samples])
    assert len(answers) == len(intel_tracks["A"].samples)
    for a in answers:
        assert set(a.scores) == set(ATTRIBUTES)
        assert not any(word in key for key in a.scores for word in SENSITIVE)
        assert not any(word in name for name in vars(a) for word in SENSITIVE)


def test_indexing_stores_nothing_about_sex(models_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    """Index real footage with the model: no column, key, value or debug log line names sex or gender."""
    clip = remux(shared_data / "intel" / "one-by-one-person-detection.mp4", tmp_path / "a.mp4", 22.0)
    data = tmp_path / "data"
    proc = run_cli("-v", "index", clip, "--data", data, env=cli_env(CAMSIGHT_MODELS=str(models_dir)))
    assert proc.returncode == 0, proc.stderr
    assert "person attributes model not used" not in proc.stderr
    with sqlite3.connect(data / "camsight.db") as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        dump = []
        for table in tables:
            columns = [r[1] for r in db.execute(f"pragma table_info('{table}')")]
            dump += [f"{table}.{c}" for c in columns]
            dump += [repr(row) for row in db.execute(f"select * from '{table}'")]
        attributes = [
            json.loads(r[0]) for r in db.execute("select attributes from tracks where label='person'")
        ]
    assert attributes, "no person track indexed"
    assert any("attributes model" in a["evidence"].get("headwear:worn", "") for a in attributes)
    text = "\n".join(dump).lower() + proc.stdout.lower() + proc.stderr.lower()
    for word in SENSITIVE:
        assert word not in text, word


def test_without_the_model_indexing_warns_once_and_uses_colours(
    yolox_model: Path, vtest_short: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    data = tmp_path / "data"
    proc = run_cli(
        "index", vtest_short, "--data", data, "--detector", "yolox", "--model", yolox_model,
        env=cli_env(CAMSIGHT_MODELS=str(empty)),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "person attributes model" in ln]
    assert len(warnings) == 1, proc.stderr
    assert f"camsight models pull {REGISTRY_NAME}" in warnings[0]
    with sqlite3.connect(data / "camsight.db") as db:
        rows = [json.loads(r[0]) for r in db.execute("select attributes from tracks where label='person'")]
    assert rows and all(r["colours"].get("upper") for r in rows)
    assert not any("attributes model" in json.dumps(r["evidence"]) for r in rows)
