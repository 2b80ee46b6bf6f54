"""Privacy masks: parts of a camera's picture that are blacked out in everything users see or export.

A camera's ``masks`` (polygons, normalised 0-1 or in pixels, like zones)
become one boolean image per frame size, computed once; applying it is a
bitwise AND over the masks' bounding box only (well under a millisecond
for a 1080p frame). Pixels that a polygon's edge touches are masked too: a
mask errs on the side of hiding.

>>> from camsight.config import CameraConfig
>>> cam = CameraConfig(masks={"window": {"points": [[0, 0], [0.5, 0], [0.5, 0.5], [0, 0.5]]}})
>>> mask = PrivacyMask.for_camera(cam, (8, 4))
>>> image = mask.apply(np.full((4, 8, 3), 200, np.uint8))
>>> image[0, 0].tolist(), image[3, 7].tolist()
([0, 0, 0], [200, 200, 200])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from camsight.analytics.geometry import shape_pixels
from camsight.config import CameraConfig

#: Sub-pixel precision of polygon corners (cv2.polylines ``shift``).
_SHIFT = 4


def _fill_centres(image: np.ndarray, pts: np.ndarray) -> None:
    """Set to 1 every pixel of ``image`` whose centre lies inside the polygon ``pts`` (even-odd rule).

    Exact, unlike cv2.fillPoly, which misses some pixels along an edge.
    """
    h, w = image.shape
    x1, y1 = pts[:, 0], pts[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    top = max(0, int(np.floor(y1.min() - 0.5)))
    bottom = min(h, int(np.ceil(y1.max() + 0.5)))
    cy = np.arange(top, bottom, dtype=np.float64)[:, None] + 0.5
    # Where each edge crosses each row of pixel centres (half-open, so a vertex counts once).
    crosses = ((y1 <= cy) & (y2 > cy)) | ((y2 <= cy) & (y1 > cy))
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = np.where(crosses, x1 + (cy - y1) * (x2 - x1) / (y2 - y1), np.inf)
    xs.sort(axis=1)
    for row, hits in zip(range(top, bottom), xs, strict=True):
        hits = hits[np.isfinite(hits)]
        for a, b in zip(hits[0::2], hits[1::2], strict=False):
            # Columns whose centre i + 0.5 lies in [a, b).
            lo, hi = max(0, int(np.ceil(a - 0.5))), min(w, int(np.ceil(b - 0.5)))
            if hi > lo:
                image[row, lo:hi] = 1


@dataclass(frozen=True)
class PrivacyMask:
    """Which pixels of a ``size`` (width, height) frame are masked.

    ``mask`` is a bool (height, width) array, true where the picture is
    blacked out. :meth:`apply` and :meth:`apply_gray` change the image they
    are given (in place) and return it.
    """

    size: tuple[int, int]
    mask: np.ndarray
    #: Bounding box of the masked pixels as (y0, y1, x0, x1), so applying touches only that.
    box: tuple[int, int, int, int]
    #: Within ``box``: 0 where masked, 255 elsewhere (uint8).
    keep: np.ndarray = field(repr=False)
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_polygons(cls, polygons: list[np.ndarray], size: tuple[int, int]) -> PrivacyMask | None:
        """A mask from polygons in pixel coordinates (each an (n, 2) array); None when nothing is masked."""
        w, h = size
        image = np.zeros((h, w), np.uint8)
        for pts in polygons:
            _fill_centres(image, np.asarray(pts, np.float64))
        # Also the pixels the edges run through: a mask errs on the side of hiding.
        scaled = [
            np.round((np.asarray(p, np.float64) - 0.5) * (1 << _SHIFT)).astype(np.int32) for p in polygons
        ]
        cv2.polylines(image, scaled, True, 1, thickness=1, lineType=cv2.LINE_8, shift=_SHIFT)
        mask = image.astype(bool)
        if not mask.any():
            return None
        ys = np.flatnonzero(mask.any(axis=1))
        xs = np.flatnonzero(mask.any(axis=0))
        box = (int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1)
        y0, y1, x0, x1 = box
        # 0 where masked, 255 elsewhere: ANDing with it blacks out the masked pixels.
        keep = np.where(mask[y0:y1, x0:x1], 0, 255).astype(np.uint8)
        return cls(size, mask, box, keep)

    @classmethod
    def for_camera(
        cls, camera: CameraConfig, size: tuple[int, int], name: str = "camera"
    ) -> PrivacyMask | None:
        """The camera's masks on a frame of ``size`` (width, height); None when it has none.

        A pixel mask point outside the frame is a :class:`~camsight.errors.ConfigError`.
        """
        polygons = []
        for mask_name, zone in camera.masks.items():
            polygons.append(shape_pixels(name, "masks", mask_name, zone, size))
        if not polygons:
            return None
        return cls.from_polygons(polygons, size)

    def _check(self, image: np.ndarray) -> None:
        if image.shape[1] != self.size[0] or image.shape[0] != self.size[1]:
            raise ValueError(
                f"the mask is for {self.size[0]}x{self.size[1]} frames, got {image.shape[1]}x{image.shape[0]}"
            )

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Black out the masked pixels of a BGR uint8 image (H x W x C), in place; returns it."""
        self._check(image)
        y0, y1, x0, x1 = self.box
        sub = image[y0:y1, x0:x1]
        keep = self.keep if image.ndim == 2 else self._keep_channels(image.shape[2])
        np.bitwise_and(sub, keep, out=sub)
        return image

    def apply_gray(self, gray: np.ndarray) -> np.ndarray:
        """Black out the masked pixels of a single-channel uint8 image (H x W), in place; returns it."""
        if gray.ndim != 2:
            raise ValueError(f"expected a single-channel image, got shape {gray.shape}")
        return self.apply(gray)

    def _keep_channels(self, channels: int) -> np.ndarray:
        # Built once per channel count: broadcasting a (h, w, 1) operand is several times slower.
        cache = self._cache
        if channels not in cache:
            cache[channels] = np.ascontiguousarray(np.repeat(self.keep[..., None], channels, axis=2))
        return cache[channels]

    @property
    def fraction(self) -> float:
        """Share of the frame that is masked."""
        return float(self.mask.mean())
