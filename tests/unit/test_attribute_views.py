"""Attributes from many views: the views the builder keeps, and colours robust to shade and background."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from camsight.analytics.attributes import AttributeExtractor, sample_appearance, sample_colours, shade_scores
from camsight.analytics.colour import colour_scores, colour_shares, without_background
from camsight.records.attributes import TrackAttributes
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.sources.frame import Frame
from camsight.tracking.builder import TrackBuilder
from camsight.tracking.crops import SampleKeeper
from camsight.tracking.kinematics import kinematics
from camsight.tracking.tracker import TrackedBox
from camsight.vision.person_attributes import load_person_attributes

W, H = 640, 360


def noisy(shape: tuple[int, int], bgr: tuple[int, int, int], sigma: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    patch = np.empty((*shape, 3), np.float32)
    patch[:] = bgr
    return np.clip(patch + rng.normal(0, sigma, patch.shape), 0, 255).astype(np.uint8)


class TestDarkColours:
    def test_dark_denim_in_shade_reads_blue(self):
        # Measured on the Intel indoor clip: jeans in shadow are about (34, 5, 0) BGR.
        assert colour_scores(noisy((20, 20), (34, 5, 0)))["blue"] >= 0.9

    def test_a_camera_black_level_with_a_blue_cast_stays_black(self):
        # The same clip's black clothes: crushed to (16, 0, 0) BGR.
        scores = colour_scores(noisy((20, 20), (16, 0, 0), sigma=1.5))
        assert scores["black"] >= 0.9 and scores["blue"] < 0.25, scores

    def test_folds_of_blue_jeans_are_blue_not_black(self):
        jeans = noisy((40, 20), (90, 40, 10))  # lit denim
        jeans[::3] = noisy((14, 20), (18, 3, 0), sigma=1.0)[: len(jeans[::3])]  # its folds in shadow
        plain = colour_shares(jeans)
        folded = colour_shares(jeans, fold_shade=True)
        assert plain["black"] > 0.25
        assert folded["black"] < plain["black"] / 2 and folded["blue"] > plain["blue"]

    def test_black_trousers_are_not_folded_into_a_small_hue(self):
        trousers = noisy((40, 20), (10, 8, 8))
        trousers[:4] = (60, 30, 200)  # a red stripe: too small to claim the shadows
        assert colour_shares(trousers, fold_shade=True)["black"] > 0.8


def test_background_beside_the_person_is_taken_out():
    legs = {"black": 0.65, "brown": 0.3, "grey": 0.05}
    floor = {"brown": 0.9, "grey": 0.1}
    cleaned = without_background(legs, floor, 0.3)
    assert cleaned["brown"] < 0.05 and cleaned["black"] > 0.9
    assert without_background(legs, {}, 0.3) == pytest.approx(legs, abs=1e-3)


def person_view(
    t: float, top: tuple[int, int, int], bottom: tuple[int, int, int], floor: tuple[int, int, int]
):
    """A 40x100 person (top/bottom colours) standing on ``floor``, seen with a 10% margin."""
    image = noisy((120, 48), floor, seed=int(t * 10))
    image[10:28, 4:44] = noisy((18, 40), (40, 30, 25))  # head: dark hair
    image[28:65, 4:44] = noisy((37, 40), top)
    image[65:110, 4:44] = noisy((45, 40), bottom)
    image[75:110, 20:28] = noisy((35, 8), floor)  # the floor seen between the legs
    return Crop(
        int(t * 10), t, (4.0, 10.0, 44.0, 110.0), 1.0, image, origin=(0, 0), light=(95.0, 1.0, 1.0, 1.0)
    )


def test_colours_from_many_views_ignore_the_floor_between_the_legs():
    views = [person_view(t, (30, 30, 200), (15, 15, 15), (40, 90, 160)) for t in np.arange(0, 6, 0.5)]
    colours = sample_colours(views)
    assert colours["upper"]["red"] >= 0.9
    assert colours["lower"]["black"] >= 0.9
    assert colours["lower"].get("brown", 0) < 0.3, colours["lower"]


def test_a_light_blue_top_is_light_and_a_navy_one_is_not():
    grey = (128, 128, 128)
    light_blue = [person_view(t, (230, 200, 150), (20, 20, 20), grey) for t in np.arange(0, 4, 0.5)]
    navy = [person_view(t, (110, 40, 20), (20, 20, 20), grey) for t in np.arange(0, 4, 0.5)]
    (light_colours, light), (navy_colours, dark) = sample_appearance(light_blue), sample_appearance(navy)
    assert light_colours["upper"]["blue"] >= 0.9 and navy_colours["upper"]["blue"] >= 0.9
    assert shade_scores(light["upper"])["light"] >= 0.9 > 0.1 >= shade_scores(dark["upper"])["light"]
    assert shade_scores(light["lower"])["light"] == 0.0  # black trousers
    facets = TrackAttributes(shade={"upper": shade_scores(light["upper"])}).facet_scores()
    assert facets["upper:light"] >= 0.9


def test_a_spoiled_view_does_not_decide():
    views = [person_view(t, (30, 30, 200), (15, 15, 15), (128, 128, 128)) for t in range(8)]
    views[3].image[28:65, 4:44] = (200, 60, 20)  # a passer-by's blue coat in front of one view
    assert sample_colours(views)["upper"].get("blue", 0) < 0.1


class TestSampleKeeper:
    def test_views_stay_spread_over_a_long_track_and_bounded(self):
        keeper = SampleKeeper(k=12, gap=0.4)
        for t in np.arange(0, 120, 0.2):
            if keeper.wants(float(t)):
                keeper.add(Crop(0, float(t), (0, 0, 1, 1), 1.0, np.zeros((1, 1, 3), np.uint8)))
        times = [c.t for c in keeper.samples]
        assert 6 <= len(times) <= 12
        assert times[0] == 0.0 and times[-1] > 80
        assert np.diff(times).min() >= 0.4

    def test_no_views_when_switched_off(self):
        keeper = SampleKeeper(k=0)
        assert not keeper.wants(0.0)


def frame(i: int, t: float) -> Frame:
    rng = np.random.default_rng(i)
    return Frame(index=i, t=t, image=rng.integers(0, 255, (H, W, 3), dtype=np.uint8))


def box(key: int, label: str, xyxy) -> TrackedBox:
    return TrackedBox(key=(label, key), label=label, xyxy=tuple(map(float, xyxy)), confidence=0.9)


def test_builder_keeps_views_of_people_over_the_whole_track():
    builder = TrackBuilder((W, H), end_after=1.0, samples_per_track=8)
    records = []
    for i in range(1, 101):  # 20 s at 5 fps; the person walks right, a car stays at the picture's edge
        t = i / 5
        x = 50 + 4 * i
        boxes = [box(1, "person", (x, 100, x + 40, 200)), box(2, "car", (0, 250, 120, 330))]
        records += builder.update(frame(i, t), boxes, detected=True)
    records += builder.finish()
    person = next(r for r in records if r.label == "person")
    car = next(r for r in records if r.label == "car")
    assert 4 <= len(person.samples) <= 8
    assert person.samples[0].t < 2 and person.samples[-1].t > 15
    s = person.samples[-1]
    x1, y1, x2, _ = s.local_box()
    assert x1 > 0 and y1 > 0 and x2 < s.image.shape[1]  # a margin around the box: what is beside them
    assert s.light is not None and len(s.light) == 4
    assert car.samples == []


def test_builder_skips_views_cut_by_the_side_or_covered():
    builder = TrackBuilder((W, H), end_after=1.0, samples_per_track=8)
    records = []
    for i in range(1, 31):
        t = i / 5
        boxes = [box(1, "person", (0, 100, 40, 200)), box(2, "person", (300, 100, 340, 200))]
        boxes.append(box(3, "person", (305, 100, 345, 200)))  # stands in front of person 2
        records += builder.update(frame(i, t), boxes, detected=True)
    records += builder.finish()
    assert all(r.samples == [] for r in records)


def test_missing_attributes_model_gives_one_warning(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.setenv("CAMSIGHT_MODELS", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        assert load_person_attributes() is None
        extractor = AttributeExtractor(use_pose=False)
        assert extractor.person_model is None and extractor.person_model is None
    lines = [r.getMessage() for r in caplog.records if "person attributes model" in r.getMessage()]
    assert len(lines) == 2  # one for the direct call, one for the extractor (never repeated)
    assert "camsight models pull person-attributes-recognition-crossroad-0230" in lines[0]


def model_answers(height: float, views: int, **scores: float) -> dict[str, float]:
    base = dict.fromkeys(
        (
            "has_bag",
            "has_backpack",
            "has_hat",
            "has_longsleeves",
            "has_longpants",
            "has_longhair",
            "has_coat_jacket",
        ),
        0.05,
    )
    return {**base, **scores, "height_px": height, "views": float(views)}


@pytest.mark.parametrize(
    ("height", "views", "full"),
    [(300.0, 8, True), (70.0, 8, False), (300.0, 1, False)],
)
def test_the_model_alone_makes_a_full_match_only_on_people_it_sees_well(height, views, full):
    """Small people (the model is weak there) or a one-view fragment: its answer ranks, never decides."""
    views_ = [person_view(t, (30, 30, 200), (15, 15, 15), (128, 128, 128)) for t in range(6)]
    obs = [Observation(i, float(i), (4.0, 10.0, 44.0, 110.0), 0.9) for i in range(6)]
    record = TrackRecord(1, "person", obs, [], kinematics(obs, "person"), 0.9, samples=views_)
    extractor = AttributeExtractor(use_pose=False, person_model=False)
    attrs = extractor.extract(
        record, model_answers(height, views, has_bag=0.95, has_hat=0.9, has_longhair=0.9)
    )
    assert (attrs.carried["handbag"] >= 0.5) is full, attrs.carried
    assert attrs.carried["handbag"] > 0.3  # it still ranks such people first
    assert "attributes model 0.95" in attrs.evidence["carried:handbag"]
    # A hat the model sees counts as far as it is trusted; the hair it calls long adds nothing.
    assert (attrs.headwear_worn >= 0.5) is full, attrs.evidence["headwear:worn"]
