"""Naming region colours with the basic colour terms: synthetic patches, then real crops of vtest.avi."""

from __future__ import annotations

import itertools

import av
import numpy as np
import pytest

from camsight.analytics.colour import (
    Illuminant,
    colour_scores,
    colour_shares,
    dominant,
    estimate_illuminant,
    mean_scores,
    score_share,
)
from camsight.records.facets import COLOURS

# RGB of a typical object of each term (the patches are built in BGR).
SWATCHES: dict[str, list[tuple[int, int, int]]] = {
    "black": [(0, 0, 0), (30, 30, 32)],
    "white": [(255, 255, 255), (235, 238, 240)],
    "grey": [(128, 128, 128), (100, 102, 104)],
    "red": [(220, 30, 30), (128, 0, 0), (200, 40, 70)],
    "orange": [(255, 140, 0), (240, 120, 40)],
    "yellow": [(255, 230, 0), (240, 220, 80)],
    "green": [(0, 128, 0), (60, 180, 75), (20, 80, 40)],
    "blue": [(0, 0, 255), (0, 0, 128), (70, 100, 140), (150, 190, 230)],
    "purple": [(128, 0, 128), (90, 40, 150)],
    "pink": [(255, 192, 203), (255, 105, 180), (230, 150, 170)],
    "brown": [(139, 69, 19), (110, 80, 50), (200, 170, 130)],
}


def patch(rgb: tuple[int, int, int], size: tuple[int, int] = (24, 16), scale: float = 1.0) -> np.ndarray:
    """A uniform BGR patch of ``rgb`` dimmed by ``scale`` (shade)."""
    r, g, b = (round(v * scale) for v in rgb)
    out = np.zeros((*size, 3), np.uint8)
    out[:] = (b, g, r)
    return out


def top(scores: dict[str, float], k: int = 1) -> list[str]:
    return dominant(scores, k=k, min_score=0.0)


class TestSyntheticPatches:
    @pytest.mark.parametrize(("term", "rgb"), [(t, c) for t, cs in SWATCHES.items() for c in cs])
    def test_each_basic_colour_is_named(self, term, rgb):
        scores = colour_scores(patch(rgb))
        assert top(scores) == [term], scores
        assert scores[term] == pytest.approx(1.0, abs=0.05)

    def test_every_term_is_reported_in_order(self):
        scores = colour_scores(patch((10, 200, 10)))
        assert tuple(scores) == COLOURS
        assert all(0.0 <= v <= 1.0 for v in scores.values())

    @pytest.mark.parametrize(
        ("term", "rgb"),
        [
            ("red", (220, 30, 30)),
            ("green", (60, 180, 75)),
            ("blue", (70, 100, 140)),
            ("blue", (150, 190, 230)),
            ("purple", (128, 0, 128)),
            ("pink", (255, 192, 203)),
            ("brown", (139, 69, 19)),
        ],
    )
    def test_shade_keeps_the_hue(self, term, rgb):
        """The same garment at half the light keeps its name (chroma, not lightness, decides)."""
        scores = colour_scores(patch(rgb, scale=0.5))
        assert term in top(scores, 2), scores

    def test_white_in_shade_is_white_or_grey_never_black(self):
        scores = colour_scores(patch((255, 255, 255), scale=0.5))
        assert top(scores)[0] in ("white", "grey"), scores
        assert scores["black"] < 0.1

    def test_white_in_a_dim_scene_is_white_given_the_illuminant(self):
        dim_scene = patch((255, 255, 255), size=(60, 80), scale=0.5)
        light = estimate_illuminant(dim_scene)
        assert light.white_level < 60
        scores = colour_scores(dim_scene[10:30, 10:30], illuminant=light)
        assert scores["white"] > 0.5, scores
        assert scores["black"] == 0.0

    def test_navy_is_blue(self):
        for rgb in [(0, 0, 128), (20, 25, 70), (45, 20, 15)[::-1]]:
            scores = colour_scores(patch(rgb))
            assert top(scores) == ["blue"], (rgb, scores)

    def test_red_and_navy_jacket_gets_both(self):
        jacket = np.zeros((40, 24, 3), np.uint8)
        jacket[:16] = patch((200, 30, 40), size=(16, 24))
        jacket[16:] = patch((20, 25, 70), size=(24, 24))
        scores = colour_scores(jacket)
        assert set(top(scores, 2)) == {"red", "blue"}, scores
        assert scores["red"] > 0.9 and scores["blue"] > 0.9
        assert max(v for k, v in scores.items() if k not in ("red", "blue")) < 0.1

    def test_uniform_black_coat_is_black_and_nothing_else(self):
        rng = np.random.default_rng(0)
        coat = np.clip(patch((25, 25, 28), size=(40, 30)).astype(int) + rng.normal(0, 4, (40, 30, 3)), 0, 255)
        scores = colour_scores(coat.astype(np.uint8))
        assert scores["black"] > 0.95
        assert max(v for k, v in scores.items() if k != "black") < 0.1, scores

    def test_specks_score_zero(self):
        coat = patch((0, 0, 0), size=(40, 40))
        coat[:4, :10] = patch((220, 30, 30), size=(4, 10))  # 2.5% red
        assert colour_scores(coat)["red"] == 0.0

    def test_share_maps_to_score_smoothly(self):
        values = [score_share(s) for s in np.linspace(0, 1, 21)]
        assert values[0] == 0.0 and values[-1] == 1.0
        assert all(b >= a for a, b in itertools.pairwise(values))
        assert score_share(0.35) == pytest.approx(1.0)

    def test_mask_selects_the_pixels_that_count(self):
        image = np.zeros((20, 20, 3), np.uint8)
        image[:, 10:] = patch((0, 128, 0), size=(20, 10))
        mask = np.zeros((20, 20), bool)
        mask[:, 10:] = True
        assert top(colour_scores(image, mask)) == ["green"]
        assert colour_scores(image, mask)["black"] == 0.0
        soft = np.where(mask, 1.0, 0.05)
        assert colour_shares(image, soft)["green"] > 0.9

    def test_shares_sum_to_one(self):
        rng = np.random.default_rng(1)
        noise = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
        assert sum(colour_shares(noise).values()) == pytest.approx(1.0, abs=1e-3)

    def test_empty_region_scores_nothing(self):
        assert set(colour_scores(np.zeros((0, 5, 3), np.uint8)).values()) == {0.0}
        assert set(colour_scores(patch((255, 0, 0)), np.zeros((24, 16))).values()) == {0.0}

    def test_bad_input_is_refused(self):
        with pytest.raises(ValueError, match="BGR image"):
            colour_scores(np.zeros((10, 10), np.uint8))
        with pytest.raises(ValueError, match="mask shape"):
            colour_scores(patch((0, 0, 0)), np.ones((3, 3)))

    def test_large_regions_are_downsampled_alike(self):
        small = colour_scores(patch((70, 100, 140), size=(30, 20)))
        large = colour_scores(patch((70, 100, 140), size=(600, 400)))
        assert small == large

    def test_colour_cast_is_removed_by_the_illuminant(self):
        scene = patch((212, 220, 240), size=(60, 80))  # a white wall under a blue cast (RGB)
        scene[20:40, 20:40] = patch((120, 124, 136), size=(20, 20))  # a grey shirt under the same light
        shirt = scene[20:40, 20:40]
        assert colour_scores(shirt)["blue"] > 0.3  # the cast alone makes it look bluish
        light = estimate_illuminant(scene)
        assert light.gains[0] < 1.0 < light.gains[2]  # B down, R up
        corrected = colour_scores(shirt, illuminant=light)
        assert top(corrected) == ["grey"] and corrected["blue"] == 0.0, corrected
        assert colour_scores(shirt, illuminant=Illuminant()) == colour_scores(shirt)

    def test_coloured_brightest_pixels_do_not_tint_the_scene(self):
        sign = patch((250, 220, 0), size=(40, 40))  # a yellow sign fills the view
        assert estimate_illuminant(sign).gains == (1.0, 1.0, 1.0)

    def test_dominant_and_mean(self):
        scores = {"black": 0.9, "grey": 0.3, "blue": 0.95, "red": 0.1}
        assert dominant(scores) == ["blue", "black"]
        assert dominant(scores, k=5) == ["blue", "black", "grey"]
        assert dominant({"red": 0.5, "blue": 0.5}, k=1) == ["red"]  # ties: vocabulary order
        assert mean_scores([{"red": 1.0}, {"red": 0.0, "blue": 0.5}]) == {
            **dict.fromkeys(COLOURS, 0.0),
            "red": 0.5,
            "blue": 0.25,
        }
        assert mean_scores([]) == dict.fromkeys(COLOURS, 0.0)


# --------------------------------------------------------------------------- real footage

#: vtest.avi people with clearly coloured clothes (search_dev.json), at frames
#: where they are whole and apart from others.
REAL = {
    16: (150, 180, 210),  # light blue jacket, white hood, blue jeans
    11: (100, 200, 300),  # red shoulders, navy body
    9: (50, 150, 250),  # black jacket, blue jeans
    14: (250, 300, 350),  # black all over
}


@pytest.fixture(scope="module")
def vtest_people(vtest):
    """{id: [(frame image, box)]} for the people of :data:`REAL`."""
    gt = np.loadtxt(vtest.with_name("gt_dev.txt"), delimiter=",", ndmin=2)
    wanted = {f: pid for pid, frames in REAL.items() for f in frames}
    out: dict[int, list[tuple[np.ndarray, tuple[float, float, float, float]]]] = {}
    with av.open(str(vtest)) as container:
        for n, frame in enumerate(container.decode(video=0), start=1):
            if n > max(wanted):
                break
            if n in wanted:
                pid = wanted[n]
                row = gt[(gt[:, 0] == n) & (gt[:, 1] == pid)][0]
                box = (row[2], row[3], row[2] + row[4], row[3] + row[5])
                out.setdefault(pid, []).append((frame.to_ndarray(format="bgr24"), box))
    return out


def region_scores(samples, top_frac: float, bottom_frac: float) -> dict[str, float]:
    """Mean scores of a band of the box (shares of its height), trimmed 20% at the sides."""
    scores = []
    for image, (x1, y1, x2, y2) in samples:
        w, h = x2 - x1, y2 - y1
        crop = image[
            int(y1 + top_frac * h) : int(y1 + bottom_frac * h), int(x1 + 0.2 * w) : int(x2 - 0.2 * w)
        ]
        scores.append(colour_scores(crop))
    return mean_scores(scores)


@pytest.mark.integration
class TestRealCrops:
    def test_light_blue_jacket_is_blue(self, vtest_people):
        upper = region_scores(vtest_people[16], 0.2, 0.55)
        assert top(upper) == ["blue"], upper
        assert region_scores(vtest_people[16], 0.55, 0.95)["blue"] > 0.8

    def test_red_shoulders_and_navy_body(self, vtest_people):
        upper = region_scores(vtest_people[11], 0.2, 0.55)
        assert "red" in top(upper, 3), upper
        assert "blue" in top(upper, 3), upper
        assert upper["red"] > 0.3

    def test_black_jacket_blue_jeans(self, vtest_people):
        assert top(region_scores(vtest_people[9], 0.2, 0.55)) == ["black"]
        assert top(region_scores(vtest_people[9], 0.55, 0.95)) == ["blue"]

    def test_dressed_in_black(self, vtest_people):
        upper = region_scores(vtest_people[14], 0.2, 0.55)
        lower = region_scores(vtest_people[14], 0.55, 0.95)
        assert top(upper) == ["black"] and top(lower) == ["black"]
        chromatic = [k for k in COLOURS if k not in ("black", "grey", "white")]
        assert max(upper[k] for k in chromatic) < 0.2, upper
