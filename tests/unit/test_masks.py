"""Privacy masks: polygons from a camera's config blacked out in frames."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from camsight.config import CameraConfig
from camsight.errors import ConfigError
from camsight.media.masks import PrivacyMask

W, H = 320, 180


def centres_inside(points: list[tuple[float, float]], margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixels whose centres are more than ``margin`` inside, and more than ``margin`` outside, the polygon."""
    poly = shapely.Polygon(points)
    ys, xs = np.mgrid[0:H, 0:W]
    cx, cy = xs.ravel() + 0.5, ys.ravel() + 0.5
    inside = shapely.contains_xy(poly.buffer(-margin), cx, cy).reshape(H, W)
    outside = ~shapely.intersects_xy(poly.buffer(margin), cx, cy).reshape(H, W)
    return inside, outside


def test_normalised_polygon_is_placed_on_the_frame():
    cam = CameraConfig(masks={"window": {"points": [[0.1, 0.2], [0.6, 0.1], [0.5, 0.8], [0.2, 0.7]]}})
    mask = PrivacyMask.for_camera(cam, (W, H))
    assert mask is not None and mask.mask.shape == (H, W) and mask.mask.dtype == bool
    pixels = [(x * W, y * H) for x, y in cam.masks["window"].points]
    # Every pixel whose centre is inside is masked; pixels the edge runs through may be too.
    inside, outside = centres_inside(pixels, margin=0.0)
    assert mask.mask[inside].all()
    inside, outside = centres_inside(pixels, margin=1.5)
    assert not mask.mask[outside].any()


def test_apply_blacks_out_in_place_and_leaves_the_rest():
    cam = CameraConfig(
        masks={"door": {"points": [[10, 20], [100, 20], [100, 90], [10, 90]], "units": "pixels"}}
    )
    mask = PrivacyMask.for_camera(cam, (W, H))
    rng = np.random.default_rng(1)
    image = rng.integers(1, 256, (H, W, 3), dtype=np.uint8)
    original = image.copy()
    out = mask.apply(image)
    assert out is image  # in place
    assert (image[21:90, 11:100] == 0).all()
    assert (image[~mask.mask] == original[~mask.mask]).all()
    assert (image[mask.mask] == 0).all()
    assert 0.1 < mask.fraction < 0.13


def test_several_masks_and_gray_frames():
    cam = CameraConfig(
        masks={
            "left": {"points": [[0, 0], [0.2, 0], [0.2, 1], [0, 1]]},
            "right": {"points": [[0.8, 0], [1, 0], [1, 1], [0.8, 1]]},
        }
    )
    mask = PrivacyMask.for_camera(cam, (W, H))
    gray = np.full((H, W), 200, np.uint8)
    mask.apply_gray(gray)
    assert (gray[:, :60] == 0).all() and (gray[:, -60:] == 0).all()
    assert (gray[:, 70:250] == 200).all()
    with pytest.raises(ValueError, match="single-channel"):
        mask.apply_gray(np.zeros((H, W, 3), np.uint8))


def test_whole_frame_mask_covers_every_pixel():
    cam = CameraConfig(masks={"all": {"points": [[0, 0], [1, 0], [1, 1], [0, 1]]}})
    mask = PrivacyMask.for_camera(cam, (W, H))
    assert mask.mask.all()
    assert not mask.apply(np.full((H, W, 3), 255, np.uint8)).any()


def test_no_masks_is_none_and_wrong_sizes_are_errors():
    assert PrivacyMask.for_camera(CameraConfig(), (W, H)) is None
    cam = CameraConfig(masks={"m": {"points": [[0, 0], [0.5, 0], [0.5, 0.5]]}})
    mask = PrivacyMask.for_camera(cam, (W, H))
    with pytest.raises(ValueError, match="320x180"):
        mask.apply(np.zeros((H + 2, W, 3), np.uint8))
    outside = CameraConfig(masks={"m": {"points": [[0, 0], [500, 0], [500, 100]], "units": "pixels"}})
    with pytest.raises(ConfigError, match=r"masks\.m"):
        PrivacyMask.for_camera(outside, (W, H), "gate")


def test_the_mask_is_computed_once():
    cam = CameraConfig(masks={"m": {"points": [[0.3, 0.3], [0.6, 0.3], [0.6, 0.6], [0.3, 0.6]]}})
    mask = PrivacyMask.for_camera(cam, (W, H))
    before = mask.mask.copy()
    for _ in range(3):
        mask.apply(np.full((H, W, 3), 90, np.uint8))
    assert (mask.mask == before).all()
    # The work is confined to the mask's bounding box.
    y0, y1, x0, x1 = mask.box
    assert (y0, x0) == (54, 96) and y1 - y0 <= 56 and x1 - x0 <= 98
