"""The light a frame was taken in, estimated from its brightest near-neutral pixels.

It lives below the tracker so the track builder can note, for each view of a
person it keeps, the light of that frame (a crop alone cannot tell a cream
shirt from a white one in warm light); :mod:`camsight.analytics.colour` uses
it to name colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: White patch: the brightest share of a frame, its lightness percentile, and the most
#: tint (CIELAB chroma) and per-channel gain it may correct.
WHITE_PATCH_SHARE = 0.03
WHITE_PERCENTILE = 99.0
MAX_CAST_CHROMA = 16.0
MAX_GAIN = 1.3


@dataclass(frozen=True)
class Illuminant:
    """The light a region is seen in: what white looks like there.

    ``white_level`` is the CIELAB lightness (0-100) of the brightest
    surfaces; lightness is lifted halfway toward it (by the square root of
    ``100 / white_level``), so a dim scene's whites are named white, or at
    least white and grey. ``gains`` (B, G, R) multiply pixel values to undo
    a colour cast. The default changes nothing.

    >>> Illuminant()
    Illuminant(white_level=100.0, gains=(1.0, 1.0, 1.0))
    """

    white_level: float = 100.0
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)


def estimate_illuminant(image_bgr: np.ndarray) -> Illuminant:
    """Estimate the light a frame was taken in, from its brightest near-neutral pixels (white patch).

    ``white_level`` is a high percentile of CIELAB lightness, clamped to
    [40, 100] so a dark frame does not turn every grey white. ``gains`` make
    the mean of the brightest pixels neutral, when those pixels are only
    slightly tinted (a white wall under a blue cast); when they are clearly
    coloured (a yellow sign is the brightest thing in view) the colour is
    left alone. Estimate it on the whole frame, not a person's crop: a crop's
    brightest pixels may be a cream shirt.

    >>> import numpy as np
    >>> dim = np.full((10, 10, 3), 128, np.uint8)   # a dim, flat scene
    >>> round(estimate_illuminant(dim).white_level)
    54
    >>> bluish = np.full((10, 10, 3), (235, 220, 210), np.uint8)   # BGR: white under a blue cast
    >>> [round(g, 2) for g in estimate_illuminant(bluish).gains]
    [0.94, 1.01, 1.06]
    """
    img = np.asarray(image_bgr)
    if img.size == 0:
        return Illuminant()
    h, w = img.shape[:2]
    if max(h, w) > 160:
        scale = 160 / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    flat = img.reshape(-1, 3).astype(np.float32) / 255.0
    lab = cv2.cvtColor(flat.reshape(-1, 1, 3), cv2.COLOR_BGR2LAB).reshape(-1, 3)
    lightness = lab[:, 0]
    white_level = float(np.clip(np.percentile(lightness, WHITE_PERCENTILE), 40.0, 100.0))
    bright = lightness >= np.percentile(lightness, 100.0 - WHITE_PATCH_SHARE * 100.0)
    bright &= flat.max(axis=1) < 0.98  # clipped pixels say nothing about the light's colour
    gains = (1.0, 1.0, 1.0)
    if bright.sum() >= 5:
        patch = flat[bright].mean(axis=0)
        patch_lab = cv2.cvtColor(patch.reshape(1, 1, 3), cv2.COLOR_BGR2LAB).reshape(3)
        if float(np.hypot(patch_lab[1], patch_lab[2])) <= MAX_CAST_CHROMA and patch.min() > 0.05:
            b, g, r = (round(float(np.clip(patch.mean() / v, 1 / MAX_GAIN, MAX_GAIN)), 4) for v in patch)
            gains = (b, g, r)
    return Illuminant(white_level=round(white_level, 2), gains=gains)
